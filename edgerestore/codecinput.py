"""What the codec did to a frame, as a ``codec_input`` student is told it: two strengths, 0 for a
frame the codec did not touch. Standard library only (board code may import it).

* JPEG: ``(100 - quality) / 50``: quality 90 reads 0.2, quality 50 reads 1.0. A decoder knows the
  quality from the file's quantisation tables.
* H.264: ``QP / 30``. PyAV's decoder exports each frame's QP (``codec_context.options =
  {"export_side_data": "venc_params"}``, side data ``VIDEO_ENC_PARAMS``: :func:`frame_h264_qp`).
"""

FIELDS = ("jpeg", "h264")
"""The strengths, in the order the network takes them."""

JPEG_SPAN = 50.0
H264_QP_UNIT = 30.0


def strengths(codec: str = "none", jpeg_quality: int = 0, h264_qp: float = 0.0) -> tuple:
    """``(jpeg, h264)`` strengths of one frame; ``codec`` is ``"none"``, ``"jpeg"`` or ``"h264"``."""
    if codec == "jpeg":
        if not 1 <= jpeg_quality <= 100:
            raise ValueError("JPEG quality must be 1..100, got %r" % (jpeg_quality,))
        return ((100.0 - jpeg_quality) / JPEG_SPAN, 0.0)
    if codec == "h264":
        if not 0 <= h264_qp <= 51:
            raise ValueError("H.264 QP must be 0..51, got %r" % (h264_qp,))
        return (0.0, h264_qp / H264_QP_UNIT)
    if codec == "none":
        return (0.0, 0.0)
    raise ValueError("unknown codec %r; choose one of: none, jpeg, h264" % (codec,))


def of_params(params) -> tuple:
    """The strengths of a synthetic degradation (:class:`edgerestore.distill.degrade.DegradationParams`):
    its CRF stands for the QP (``data.codec_qp: crf``; the training encoder's I-frames read back a
    mean QP about 2 below their CRF, later frames more: docs/distill.md, "A codec input")."""
    return strengths(params.codec, params.jpeg_quality, params.h264_crf)


H264_PARAMS = 1
"""``AV_VIDEO_ENC_PARAMS_H264``: the ``type`` of an H.264 decoder's ``AVVideoEncParams``."""


def h264_qp(raw: bytes):
    """The mean QP of a frame from its ``VIDEO_ENC_PARAMS`` side data (FFmpeg's ``AVVideoEncParams``
    in this machine's layout, then its blocks), or ``None`` if it is not H.264's. The frame's QP plus
    each block's delta (x264's adaptive quantisation), weighted by the blocks' areas."""
    import struct

    head = "@INNii"
    nb_blocks, offset, size, kind, qp = struct.unpack_from(head, raw)
    if kind != H264_PARAMS:
        return None
    if not nb_blocks:
        return float(qp)
    total = area = 0.0
    for k in range(nb_blocks):
        _x, _y, w, h, delta = struct.unpack_from("@iiiii", raw, offset + k * size)
        total += (qp + delta) * w * h
        area += w * h
    return total / area if area else float(qp)


def frame_h264_qp(frame):
    """:func:`h264_qp` of a PyAV video frame decoded with ``codec_context.options =
    {"export_side_data": "venc_params"}``; ``None`` without that side data."""
    side = getattr(frame, "side_data", ())
    # PyAV < 18.1.1 iterates the side data itself; 18.1.1 made the container a mapping of type -> data.
    for data in (side.values() if hasattr(side, "values") else side):
        if str(getattr(data.type, "name", data.type)).endswith("VIDEO_ENC_PARAMS"):
            return h264_qp(bytes(data))
    return None


def frame_codec(frame):
    """The strengths of a PyAV H.264 frame decoded with ``export_side_data`` (:func:`frame_h264_qp`),
    or ``None`` without its QP."""
    qp = frame_h264_qp(frame)
    return None if qp is None else strengths("h264", h264_qp=min(51.0, max(0.0, qp)))


# The JPEG standard's luminance quantisation table (ITU T.81, Annex K), in zigzag order as a file
# stores it; libjpeg (OpenCV, Pillow, cameras' firmware) scales it by the quality.
_LUMA_ZIGZAG = (16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35, 37,
                29, 40, 58, 51, 61, 60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
                95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99)


def _libjpeg_table(quality):
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (q * scale + 50) // 100)) for q in _LUMA_ZIGZAG]


def jpeg_quality(data: bytes):
    """The quality (1..100) a JPEG file was written at, read off its luminance quantisation table as
    the libjpeg quality that scales the standard table closest to it; ``None`` if ``data`` is not a
    JPEG or has no such table."""
    import struct

    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: the tables come before
            return None
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker == 0xDB:  # quantisation tables: (precision << 4 | id), then 64 entries
            body, end = pos + 4, pos + 2 + length
            while body < end:
                precision, table_id = data[body] >> 4, data[body] & 15
                size = 128 if precision else 64
                fmt = ">64H" if precision else "64B"
                table = struct.unpack_from(fmt, data, body + 1)
                if table_id == 0:
                    return min(range(1, 101), key=lambda q: sum(abs(a - b) for a, b in zip(table, _libjpeg_table(q))))
                body += 1 + size
        pos += 2 + length
    return None


def file_codec(path):
    """The strengths of a still image file: a JPEG's quality (:func:`jpeg_quality`), else ``None``."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)  # the tables come before the first scan
    quality = jpeg_quality(head)
    return None if quality is None else strengths("jpeg", jpeg_quality=quality)
