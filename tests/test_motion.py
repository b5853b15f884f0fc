"""Motion compensation of a temporal student's state: the flow between input frames, the warps
of the fed-back frame and features (OpenCV in the runtime, PyTorch in the trainer: the same
numbers), and the runtime warping exactly the entries the model file marks."""

import json

import cv2
import numpy as np
import pytest
import torch

from edgerestore.models.config import StudentConfig
from edgerestore.models.motion import flow_at_stride
from edgerestore.models.motion import warp as torch_warp
from edgerestore.models.student import StudentNet
from edgerestore.runtime import motion
from edgerestore.runtime import quality as metrics
from edgerestore.runtime.backends.base import Backend


def textured(size=(96, 128), seed=0):
    """A smooth random texture (DIS needs gradients, not white noise)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0] // 8 + 4, size[1] // 8 + 4, 3)).astype(np.uint8)
    return cv2.resize(base, (size[1] + 32, size[0] + 32), interpolation=cv2.INTER_CUBIC)


def shifted_pair(dx=3, dy=2, size=(96, 128)):
    """(previous, current): the camera moved so that current(x) = previous(x + (dx, dy))."""
    big = textured(size)
    previous = np.ascontiguousarray(big[8:8 + size[0], 8:8 + size[1]])
    current = np.ascontiguousarray(big[8 + dy:8 + dy + size[0], 8 + dx:8 + dx + size[1]])
    return previous, current


def inner(image, margin=12):
    return image[margin:-margin, margin:-margin].astype(np.float64)


def test_flow_finds_a_camera_shift_and_the_warp_undoes_it():
    previous, current = shifted_pair(3, 2)
    estimator = motion.FlowEstimator()
    flow = estimator.flow(estimator.prepare(current), estimator.prepare(previous), current.shape)
    field = flow.dense()
    assert np.allclose(np.median(field[12:-12, 12:-12].reshape(-1, 2), axis=0), [3.0, 2.0], atol=0.25)
    moved = motion.warp(previous, flow)
    assert moved.dtype == np.uint8 and moved.shape == previous.shape
    before = np.abs(inner(previous) - inner(current)).mean()
    after = np.abs(inner(moved) - inner(current)).mean()
    assert after < 0.2 * before


def test_identical_frames_have_no_flow_and_large_frames_are_scaled_down():
    estimator = motion.FlowEstimator(max_width=64)
    frame = textured((48, 128))[:48, :128]
    picture = estimator.prepare(frame)
    assert picture.shape == (24, 64) and picture.dtype == np.uint8
    assert estimator.flow(picture, picture.copy(), frame.shape) is None
    assert np.array_equal(motion.dense_flow(frame, frame), np.zeros((48, 128, 2), np.float32))
    with pytest.raises(ValueError, match="different sizes"):
        estimator.flow(picture, picture[:, :32], frame.shape)


def test_a_flow_computed_on_a_smaller_picture_moves_the_full_frame():
    previous, current = shifted_pair(4, 0, size=(96, 256))
    estimator = motion.FlowEstimator(max_width=128)  # flow at half resolution, in half-size pixels
    flow = estimator.flow(estimator.prepare(current), estimator.prepare(previous), current.shape)
    assert flow.field.shape[:2] == (48, 128)
    assert np.allclose(np.median(flow.dense()[12:-12, 12:-12, 0]), 4.0, atol=0.5)
    after = np.abs(inner(motion.warp(previous, flow)) - inner(current)).mean()
    assert after < 0.3 * np.abs(inner(previous) - inner(current)).mean()


def test_runtime_and_trainer_warps_agree_on_frames_and_features():
    previous, current = shifted_pair(3, -2)
    estimator = motion.FlowEstimator()
    flow = estimator.flow(estimator.prepare(current), estimator.prepare(previous), current.shape)
    dense = torch.from_numpy(flow.dense().transpose(2, 0, 1))[None]
    frame = torch.from_numpy(previous).permute(2, 0, 1)[None].float()
    by_torch = torch_warp(frame, dense)[0].permute(1, 2, 0).numpy()
    assert np.abs(motion.warp(previous, flow) - by_torch).max() <= 1.0  # OpenCV rounds to uint8
    # smooth features, like a network's: OpenCV samples at 1/32 pixel, so white noise would differ by more
    noise = np.random.default_rng(1).standard_normal((6, 8, 6)).astype(np.float32)
    features = cv2.resize(noise, (32, 24), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)[None].copy()
    nchw = motion.warp_state(features, {"layout": "nchw", "stride": 4}, flow)
    expected = torch_warp(torch.from_numpy(features), flow_at_stride(dense, 4)).numpy()
    assert nchw.shape == features.shape and np.allclose(nchw, expected, atol=0.02)
    nhwc = motion.warp_state(np.ascontiguousarray(features.transpose(0, 2, 3, 1)), {"layout": "nhwc", "stride": 4},
                             flow)
    assert np.allclose(nhwc.transpose(0, 3, 1, 2), nchw, atol=0.03)  # OpenCV samples at 1/32 pixel
    # a fixed-size model's state is larger than the frame: only the part over the frame moves
    grown = np.zeros((1, 6, 30, 40), np.float32)
    grown[:, :, :24, :32] = features
    grown[:, :, 24:, :] = 7.0
    out = motion.warp_state(grown, {"layout": "nchw", "stride": 4}, flow)
    assert np.allclose(out[:, :, :24, :32], nchw, atol=1e-5) and np.all(out[:, :, 24:, :] == 7.0)


class RecordingBackend(Backend):
    """Returns the frame; records the state it was fed (the runtime's state handling, no model)."""

    name = "recording"

    def __init__(self, spec):
        super(RecordingBackend, self).__init__()
        self.stride = 4
        self.state_spec = spec
        self.scene_cuts = False
        self.fed = []

    def _run_state(self, image, state):
        self.fed.append(dict((k, np.array(v)) for k, v in state.items()))
        return image, {"previous": image[None], "hidden": np.full((1, 2, image.shape[0] // 4, image.shape[1] // 4),
                                                                  float(len(self.fed)), np.float32)}


def spec(motion_entries):
    entries = [{"input": "previous", "output": "restored", "reset": "input", "layout": "nhwc", "channels": 3,
                "dtype": "uint8"},
               {"input": "hidden", "output": "hidden_out", "reset": "zeros", "layout": "nchw", "channels": 2,
                "stride": 4, "dtype": "float32"}]
    for entry in entries:
        if entry["input"] in motion_entries:
            entry["motion"] = "flow"
    return entries


def test_the_backend_moves_the_marked_state_to_where_the_picture_now_is():
    previous, current = shifted_pair(3, 2)
    backend = RecordingBackend(spec({"previous"}))
    assert backend.motion_compensated and backend.info()["temporal"]["motion_compensated"]
    backend.infer(previous)
    backend.infer(current)
    fed = backend.fed[1]
    moved = fed["previous"][0]
    assert np.abs(inner(moved) - inner(current)).mean() < 0.2 * np.abs(inner(previous) - inner(current)).mean()
    assert np.all(fed["hidden"] == 1.0)  # not marked: fed as the model left it
    backend.infer(current)  # the picture held still: the state goes in untouched
    assert np.array_equal(backend.fed[2]["previous"][0], current)
    backend.reset()
    backend.infer(previous)  # after a reset: a fresh state, nothing to move
    assert np.array_equal(backend.fed[3]["previous"], previous)


def test_an_unmarked_state_is_never_moved():
    previous, current = shifted_pair(3, 2)
    backend = RecordingBackend(spec(set()))
    assert not backend.motion_compensated
    backend.infer(previous)
    backend.infer(current)
    assert np.array_equal(backend.fed[1]["previous"][0], previous)


def test_motion_compensated_students_mark_their_state_and_the_onnx_runtime_matches_the_trainer(tmp_path):
    from edgerestore.distill.trainer import clip_flows, run_clips
    from edgerestore.export.onnx import export_onnx, state_spec
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    torch.manual_seed(0)
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=1, temporal=True, motion=True))
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.normal_(0.0, 0.05)
        student.gate_bias.fill_(0.3)
    student.eval()
    assert [e.get("motion") for e in state_spec(student)] == ["flow", "flow"]
    path = export_onnx(student, tmp_path / "m.onnx", simplify=True)
    import onnxruntime as ort

    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert all(e["motion"] == "flow" for e in json.loads(meta.custom_metadata_map["edgerestore.state"]))
    big = textured((48, 64), seed=3)
    frames = [np.ascontiguousarray(big[2 * t:2 * t + 48, 3 * t:3 * t + 64]) for t in range(4)]
    backend = OnnxRuntimeBackend(threads=1).load(path)
    assert backend.motion_compensated
    got = [backend.infer(frame) for frame in frames]
    clip = np.stack(frames)
    with torch.no_grad():
        x = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255.0
        want = run_clips(student, x, len(frames), quantize_state=True, flows=clip_flows(clip, "cpu"))
    want = torch.round(want.clamp(0, 1) * 255.0).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    for a, b in zip(got, want):
        assert metrics.psnr(a, b) >= 45.0
    with pytest.raises(ValueError, match="needs the clips' flows"):
        run_clips(student, x, len(frames))


def test_an_opencv_without_dis_flow_is_a_one_line_error_naming_the_fix(monkeypatch):
    from edgerestore.errors import BackendUnavailableError

    monkeypatch.delattr(cv2, "DISOpticalFlow_create")
    previous, current = shifted_pair()
    estimator = motion.FlowEstimator()
    with pytest.raises(BackendUnavailableError, match="install OpenCV >= 4.0"):
        estimator.flow(estimator.prepare(current), estimator.prepare(previous), current.shape)
