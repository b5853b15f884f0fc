"""The TFLite backend (ai-edge-litert + XNNPACK) on exported artifacts, and what the converter emits."""

import numpy as np
import pytest
import torch

from edgerestore.errors import BackendUnavailableError, ConfigError
from edgerestore.export.onnx import reference_uint8
from edgerestore.runtime.artifacts import backends_for
from edgerestore.runtime.backends import create_backend
from edgerestore.runtime.backends.tflite import TFLiteBackend
from tests.export_helpers import SIZE, exported, tiny_student

pytestmark = pytest.mark.skipif(TFLiteBackend.probe() is not None, reason="no TFLite interpreter installed")


def _frame(seed, height, width):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)


def test_fp32_tflite_equals_the_pytorch_student():
    from edgerestore.models.checkpoint import load_student

    result = exported("rpi4")
    student, _ = load_student(str(result.out_dir.parent / "tiny.pt"))
    backend = create_backend("tflite", threads=1).load(str(result.out_dir / "model.tflite"))
    frame = _frame(0, *SIZE)
    expected = reference_uint8(student, torch.from_numpy(frame)[None]).numpy()[0]
    out = backend.infer(frame)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_smaller_frames_are_padded_larger_ones_refused():
    result = exported("rpi4")
    backend = TFLiteBackend(threads=1).load(str(result.out_dir / "model-int8.tflite"))
    assert backend.info()["size"] == SIZE
    small = _frame(1, SIZE[0] - 10, SIZE[1] - 6)
    out = backend.infer(small)
    assert out.shape == small.shape
    padded = np.pad(small, ((0, 10), (0, 6), (0, 0)), mode="reflect")
    assert np.array_equal(out, backend.infer(padded)[: SIZE[0] - 10, : SIZE[1] - 6])
    with pytest.raises(ConfigError) as info:
        backend.infer(_frame(2, SIZE[0] + 4, SIZE[1]))
    assert "--size %dx%d" % (SIZE[0] + 4, SIZE[1]) in str(info.value)


def test_xnnpack_and_builtin_kernels_agree():
    result = exported("rpi4")
    path = str(result.out_dir / "model.tflite")
    frame = _frame(3, *SIZE)
    with_xnnpack = TFLiteBackend(threads=1).load(path).infer(frame)
    builtin = TFLiteBackend(threads=1, xnnpack=False).load(path).infer(frame)
    assert np.abs(with_xnnpack.astype(int) - builtin).max() <= 1


def test_the_graphs_avoid_what_xnnpack_runs_slowly():
    """No TRANSPOSE_CONV (2x slower than the rest of the network under XNNPACK) and no full-frame TRANSPOSE."""
    from ai_edge_litert.interpreter import Interpreter

    result = exported("rpi4")
    for name in ("model.tflite", "model-int8.tflite", "model-fp16.tflite"):
        interpreter = Interpreter(model_path=str(result.out_dir / name))
        interpreter.allocate_tensors()
        ops = [op["op_name"] for op in interpreter._get_ops_details()]
        assert "TRANSPOSE_CONV" not in ops and "TRANSPOSE" not in ops, (name, ops)
    interpreter = Interpreter(model_path=str(result.out_dir / "model-int8.tflite"))
    interpreter.allocate_tensors()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert convs and all(details[op["outputs"][0]]["dtype"] == np.int8 for op in convs)  # integer convolutions
    fp16 = Interpreter(model_path=str(result.out_dir / "model-fp16.tflite"))
    assert any(t["dtype"] == np.float16 for t in fp16.get_tensor_details())


def test_int8_conversion_keeps_small_weight_scales(tmp_path):
    """The head's weights include 1/255: quantizing them with the stock eps (2^-12) costs ~18 dB of parity."""
    from edgerestore.export.calibration import build
    from edgerestore.export.tflite import WEIGHT_EPS, convert_int8

    assert WEIGHT_EPS < 2.0 ** -20
    student = tiny_student(seed=5)
    frames = build(SIZE).frames[:3]
    path = convert_int8(student, tmp_path / "m.tflite", frames, *SIZE)
    backend = TFLiteBackend(threads=1).load(str(path))
    parity = []
    for frame in frames:
        expected = reference_uint8(student, torch.from_numpy(frame)[None]).numpy()[0]
        err = np.mean((backend.infer(frame).astype(float) - expected) ** 2)
        parity.append(10 * np.log10(255.0 ** 2 / max(err, 1e-12)))
    assert np.mean(parity) > 45


def test_registry_and_errors(tmp_path):
    assert backends_for("x/model-int8.tflite") == ("tflite",)
    bogus = tmp_path / "bad.tflite"
    bogus.write_bytes(b"not a flatbuffer")
    with pytest.raises(BackendUnavailableError) as info:
        TFLiteBackend().load(str(bogus))
    assert "cannot load" in str(info.value)


def test_depthwise_bases_of_the_int8_graph_compute_what_the_strided_ones_do():
    """The INT8 graph's filter basis (a depthwise filter moved into the block layout) gives the same
    float frame as the FP32 graph's strided convolution (the same weights: the INT8 graph's are
    snapped to their int8 grid, so this student's are snapped first), and the basis does change
    the frame."""
    import torch

    from edgerestore.export.tflite import TFLiteFrameModel, snap_to_int8
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=1, filter_bases=2)).eval()
    with torch.no_grad():
        for weights in student.bases.weights:
            weights.weight.normal_(0, 0.5)
    for filt in student.bases.filters:
        snap_to_int8(filt.weight)
    frame = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8))
    with torch.no_grad():
        strided = TFLiteFrameModel(student).eval()(frame)
        depthwise = TFLiteFrameModel(student, depthwise_bases=True).eval()(frame)
        student.bases.weights[0].weight.zero_()
        student.bases.weights[1].weight.zero_()
        without = TFLiteFrameModel(student, depthwise_bases=True).eval()(frame)
    assert torch.equal(strided, depthwise)
    assert (depthwise.int() - without.int()).abs().max() > 2


def test_int8_basis_weights_sit_on_their_grid_and_keep_their_sums():
    """A basis' depthwise weights are snapped to the int8 steps their quantization will use (max|w| /
    127 per channel), each channel keeping its float sum: a high-pass filter rounded tap by tap leaks
    brightness into its response (small-codec's TFLite INT8 failed the INT8 bar for it)."""
    from edgerestore.export.quantize import sum_keeping_steps
    from edgerestore.export.tflite import snap_to_int8

    steps = sum_keeping_steps(np.array([[0.4, 0.4, 0.4, -1.2, 0.0], [126.6, -42.3, -42.3, -42.3, 0.0]]))
    assert steps.sum(1).tolist() == [0, 0] and steps[:, 4].tolist() == [0, 0]
    assert np.abs(steps - np.array([[0.4, 0.4, 0.4, -1.2, 0], [126.6, -42.3, -42.3, -42.3, 0]])).max() < 1.0
    taps = [0.79, -0.1, -0.1, -0.1, -0.1, -0.1, -0.1, -0.1, -0.09]
    weight = torch.tensor(taps).reshape(1, 1, 3, 3)
    want = float(weight.sum())
    snap_to_int8(weight)
    scale = weight.abs().max() / 127.0
    grid = weight / scale
    assert torch.allclose(grid, grid.round(), atol=1e-4)
    assert abs(float(weight.sum()) - want) <= scale / 2 + 1e-6
    rounded = torch.round(torch.tensor(taps) / scale)
    assert abs(float(rounded.sum() * scale) - want) > scale / 2  # tap-by-tap rounding would drift
