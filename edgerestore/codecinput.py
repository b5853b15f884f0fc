"""What the codec did to a frame, as a ``codec_input`` student is told it (a prototype): two
strengths, 0 for a frame the codec did not touch. Standard library only (board code may import it).

* JPEG: ``(100 - quality) / 50``: quality 90 reads 0.2, quality 50 reads 1.0. A decoder knows the
  quality from the file's quantisation tables.
* H.264: ``QP / 30``: x264 at CRF c codes a still frame at a QP near c. PyAV's decoder exports each
  frame's QP (``codec_context.options = {"export_side_data": "venc_params"}``, side data
  ``VIDEO_ENC_PARAMS``).
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
    its CRF stands for the QP."""
    return strengths(params.codec, params.jpeg_quality, params.h264_crf)
