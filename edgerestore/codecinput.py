"""What the codec did to a frame, as a ``codec_input`` student is told it (a prototype): two
strengths, 0 for a frame the codec did not touch. Standard library only (board code may import it).

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
    for data in getattr(frame, "side_data", ()):
        if str(getattr(data.type, "name", data.type)).endswith("VIDEO_ENC_PARAMS"):
            return h264_qp(bytes(data))
    return None
