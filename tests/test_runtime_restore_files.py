"""File -> restore -> file through the runtime with every available backend, on real clips."""

import numpy as np
import pytest

from edgerestore.runtime.backends import list_backends
from edgerestore.runtime.quality import psnr
from edgerestore.runtime.runner import open_backend, run
from edgerestore.runtime.sources import open_source


def _artifact_for(backend, tiny_onnx, tmp_path_factory):
    """The tiny model in the form ``backend`` runs (backends that arrive later plug in here)."""
    from edgerestore.runtime.artifacts import FILE_TYPES

    suffixes = [row.suffix for row in FILE_TYPES.values() if backend in row.backends]
    if ".onnx" in suffixes:
        return tiny_onnx
    if ".tflite" in suffixes:
        try:
            from edgerestore.export.tflite import export_tflite
        except ImportError as exc:
            pytest.skip("no TFLite exporter yet (%s)" % exc)
        import torch

        from edgerestore.models.config import StudentConfig
        from edgerestore.models.student import StudentNet

        torch.manual_seed(0)
        student = StudentNet(StudentConfig(scale=4, width=8, blocks=0))
        torch.nn.init.normal_(student.tail.weight, std=0.05)  # the same weights as tiny_onnx
        path = tmp_path_factory.mktemp("tiny-tflite") / "tiny.tflite"
        return export_tflite(student, path)
    pytest.skip("backend %s runs %s files; no tiny artifact maker for them" % (backend, suffixes))


def _luma(rgb):
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)[:, :, 0]


def _decode(path):
    with open_source(str(path)) as source:
        return [frame.image for frame in source], source.fps


@pytest.mark.parametrize("backend", [name for name, _ok, _why in list_backends()])
@pytest.mark.parametrize("clip", ["realshort.mp4", "tram_640x360"])
def test_file_to_file_with_each_backend(backend, clip, data_dir, tiny_onnx, tmp_path, tmp_path_factory):
    available = dict((name, (ok, why)) for name, ok, why in list_backends())
    ok, why = available[backend]
    if not ok:
        pytest.skip("backend %s is unavailable here: %s" % (backend, why))
    model = _artifact_for(backend, tiny_onnx, tmp_path_factory)
    source_path = data_dir / "video" / clip
    inputs, in_fps = _decode(source_path)
    out = tmp_path / ("restored-%s.mp4" % backend)
    # CRF 12: close to lossless, so that the comparison below sees the model rather than the codec.
    summary = run(str(source_path), ["file://%s?crf=12" % out], model=str(model), backend=backend)
    assert summary["frames"] == len(inputs) and summary["dropped"] == 0
    assert summary["backend_info"]["backend"] == backend

    outputs, out_fps = _decode(out)  # playable: PyAV decodes every frame back
    assert len(outputs) == len(inputs) and outputs[0].shape == inputs[0].shape
    assert out_fps == pytest.approx(in_fps or 30.0, rel=0.01)
    reference = open_backend(str(tiny_onnx), backend="onnxruntime")  # ONNX Runtime is the reference
    expected = [reference.infer(image) for image in inputs]
    # Compared on luma: the MP4 is 4:2:0, which halves the chroma resolution for every video.
    to_expected = np.mean([psnr(_luma(o), _luma(e)) for o, e in zip(outputs, expected)])
    to_input = np.mean([psnr(_luma(o), _luma(i)) for o, i in zip(outputs, inputs)])
    assert to_expected > 36, to_expected  # measured: 40.0 dB (realshort), 38.8 dB (tram)
    assert to_expected > to_input + 2.5, (to_expected, to_input)  # the model's output, not the input
