"""Temporal (recurrent) students end to end: the network and its state, clips for training, the
temporal loss, the flicker metric, the state through every export (ONNX, ONNX FP16, TFLite,
TensorRT graph), and the runtime keeping it per stream and starting afresh on cuts and gaps."""

import json

import numpy as np
import pytest
import torch

from edgerestore.distill import data as D
from edgerestore.distill import degrade as dg
from edgerestore.distill.sequences import CameraMotion, camera_path, render_clip
from edgerestore.export.onnx import export_onnx, reference_uint8
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet
from edgerestore.runtime import quality as metrics

H, W = 48, 64  # frame size of the export tests (multiples of the stride)


def tiny_temporal(seed=0, width=8, agreement=True):
    """A random temporal student whose tail, mixing and gate (its agreement term too) are all
    non-zero (every path matters)."""
    torch.manual_seed(seed)
    student = StudentNet(StudentConfig(scale=4, width=width, blocks=1, temporal=True, agreement=agreement))
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.normal_(0.0, 0.05)
        student.gate_bias.fill_(0.3)  # a gate near 0.6: the previous frame shows in the output
        if agreement:
            student.agreement.copy_(torch.tensor([0.2, -0.3]))  # closes as the frames disagree
    return student.eval()


def clip_frames(count=4, seed=1, size=(H, W)):
    """Consecutive frames of a slowly panning real-looking texture (no scene cut between them)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0] // 4 + 8, size[1] // 4 + 8, 3)).astype(np.uint8)
    import cv2

    big = cv2.resize(base, (size[1] * 2, size[0] * 2), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(big[t:t + size[0], 2 * t:2 * t + size[1]]) for t in range(count)]


def reference_clip(student, frames):
    """The PyTorch student over a clip, as the exported graphs compute it (uint8 state)."""
    outputs, state = [], None
    for frame in frames:
        out, state = reference_uint8(student, torch.from_numpy(frame)[None], state)
        outputs.append(out.numpy()[0])
    return outputs


# --------------------------------------------------------------------------- the network


def test_fresh_temporal_student_is_the_identity_and_carries_its_state():
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=1, temporal=True)).eval()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        out, (previous, hidden) = student.step(x)
        assert torch.equal(out, x)  # zero tail, previous = x on a fresh stream
        assert previous is out and hidden.shape == (2, 8, 4, 6)
        again, _ = student.step(torch.rand(2, 3, 16, 24), (previous, hidden))
    assert again.shape == x.shape


def test_an_open_gate_repeats_the_previous_output_and_a_closed_one_ignores_it():
    """A closed gate gives the frame-by-frame picture, clamped to [0, 1] as the exported graphs
    blend it."""
    student = tiny_temporal()
    x, previous = torch.rand(1, 3, 16, 24), torch.rand(1, 3, 16, 24)
    hidden = torch.zeros(1, 8, 4, 6)
    with torch.no_grad():
        frame_only = (x + student.tail(student.features(x, hidden))).clamp(0, 1)
        student.gate_bias.fill_(40.0)
        student.gate.weight.zero_()
        assert torch.allclose(student(x, (previous, hidden)), previous, atol=1e-6)
        student.gate_bias.fill_(-40.0)
        assert torch.allclose(student(x, (previous, hidden)), frame_only, atol=1e-6)


def test_the_gate_closes_where_the_previous_output_disagrees_with_the_frame():
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=1, temporal=True, agreement=True)).eval()
    x = torch.full((1, 3, 16, 24), 0.5)
    previous = x + 2.0 / 255  # agrees everywhere (2 levels)...
    previous[:, :, 4:8, 8:12] = 0.9  # ...but one 4x4 block, 102 levels off
    with torch.no_grad():
        student.gate_bias.fill_(4.0)  # open where they agree: sigmoid(4 - (2/16)²) = 0.98
        out = student(x, (previous, torch.zeros(1, 8, 4, 6)))
    assert torch.allclose(out[:, :, :4], previous[:, :, :4], atol=0.001)
    assert torch.allclose(out[:, :, 4:8, 8:12], x[:, :, 4:8, 8:12], atol=0.001)  # sigmoid(4 - 6.4²) ~ 0


@pytest.mark.parametrize("preset", ["pico-t", "nano-t", "small-t"])
def test_temporal_presets_start_with_the_hand_set_gate(preset):
    from edgerestore.models.presets import get_preset

    config = get_preset(preset).config
    student = StudentNet(config).eval()
    x = torch.full((1, 3, 16, 24), 0.5)
    offsets = torch.tensor([0.0, 4.0, 8.0, 12.0, 20.0, 40.0])  # levels off, one 4x4 column block each
    previous = x.clone()
    for i, offset in enumerate(offsets):
        previous[:, :, :, 4 * i:4 * i + 4] += offset / 255
    with torch.no_grad():
        out = student(x, (previous, torch.zeros(1, config.width, 4, 6)))
    # A fresh student restores nothing (out = x + g * (previous - x)), so the gate is readable.
    moved = ((out - x)[0, 0, 0, 1::4] * 255)[1:] / offsets[1:]
    expected = config.gate_open * torch.exp(-((offsets[1:] / config.gate_tau) ** 2))
    assert torch.allclose(moved, expected, atol=0.02)
    assert moved[0] > 0.75 and moved[-1] < 0.02  # open where the two agree, shut 40 levels off


def test_where_the_gate_starts_is_not_part_of_the_architecture():
    from edgerestore.models.student import hand_set_gate

    plain = StudentConfig(scale=4, width=8, temporal=True, agreement=True)
    hand = StudentConfig(scale=4, width=8, temporal=True, agreement=True, gate_open=0.7, gate_tau=8.0)
    assert plain == hand and StudentConfig.from_dict(hand.to_dict()).gate_tau == 8.0
    assert StudentNet(plain).gate_bias.item() == -2.0  # the original, nearly closed start
    bias, _, _ = hand_set_gate(0.7, 8.0)
    assert StudentNet(hand).gate_bias.item() == pytest.approx(bias) and bias > 0.0
    with pytest.raises(ValueError, match="needs temporal and agreement"):
        StudentNet(StudentConfig(scale=4, width=8, temporal=True, gate_open=0.9))
    with pytest.raises(ValueError, match="0 < gate_open < 1"):
        StudentNet(StudentConfig(scale=4, width=8, temporal=True, agreement=True, gate_open=1.5))


def test_training_keeps_the_agreement_term_from_rising_with_the_disagreement():
    student = StudentNet(StudentConfig(scale=4, width=8, temporal=True, agreement=True, gate_open=0.9))
    assert (student.agreement <= 0).all()  # the hand-set fit's tiny positive b is clipped at the start
    with torch.no_grad():
        student.agreement.copy_(torch.tensor([-3.0, 0.7]))  # shut at 2 units, open again past 4
    student.constrain()
    assert student.agreement.tolist() == [-3.0, 0.0]


def test_a_gate_held_where_it_starts_does_not_train_but_the_restoration_does():
    config = StudentConfig(scale=4, width=8, temporal=True, agreement=True, gate_open=0.9, gate_learned=False)
    student = StudentNet(config)
    start = [p.detach().clone() for p in student.gate_parameters()]
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=0.01)
    x, target = torch.rand(1, 3, 16, 24), torch.rand(1, 3, 16, 24)
    for _ in range(3):
        optimizer.zero_grad()
        (student(x, (x.roll(1, -1), torch.rand(1, 8, 4, 6))) - target).abs().mean().backward()
        optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(start, student.gate_parameters()))
    assert student.tail.weight.abs().sum() > 0  # started at zero


def test_an_overshooting_correction_is_clamped_in_the_blend_but_still_learns():
    """Where ``frame + correction`` leaves [0, 1] the blend sees the clamped picture, and the
    gradient still reaches the correction (a straight-through clamp), so training can pull it back."""
    student = tiny_temporal()
    student.gate_bias.data.fill_(-40.0)  # closed: the output is the clamped frame-by-frame picture
    x = torch.full((1, 3, 16, 24), 0.9)
    hidden = torch.zeros(1, 8, 4, 6)
    with torch.no_grad():
        student.tail.weight.zero_()
        student.tail.weight[:, 0, :, :] = 1.0  # red: +sum of the features' first channel
        features = student.features(x, hidden)
    out = student(x, (torch.zeros_like(x), hidden))
    overshoot = (x + student.tail(features).detach())[:, 0] > 1.0
    assert overshoot.any() and torch.all(out[:, 0][overshoot] == 1.0)
    out[:, 0][overshoot].sum().backward()  # only the clamped pixels
    assert student.tail.weight.grad[:, 0].abs().sum() > 0


def test_temporal_presets_cost_what_their_frame_presets_may():
    from edgerestore.models.macs import macs_per_pixel
    from edgerestore.models.presets import PRESETS

    for name in ("pico", "nano", "small"):
        frame, temporal = PRESETS[name], PRESETS[name + "-t"]
        assert temporal.config.temporal and temporal.budget == frame.budget and temporal.board == frame.board
        # counted on the steady state (the mixing of the previous features included)
        assert macs_per_pixel(StudentNet(temporal.config), 64, 64) <= temporal.budget


# --------------------------------------------------------------------------- clips for training


def test_drifting_degradation_is_deterministic_and_zero_drift_is_per_clip():
    frames = clip_frames(4, size=(40, 48))
    config = dg.with_ranges(dg.PRESETS["mild"], motion_prob=1.0, jpeg_prob=1.0, h264_prob=0.0)
    a, params = dg.degrade_sequence(frames, 5, config, vary=0.5)
    b, _ = dg.degrade_sequence(frames, 5, config, vary=0.5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert dg.frame_params(params, 0, 0.5) == params and dg.frame_params(params, 3, 0.0) == params
    drifted = [dg.frame_params(params, t, 0.5) for t in range(1, 4)]
    assert len({p.motion_length for p in drifted}) == 3 and len({p.gaussian_sigma for p in drifted}) == 3
    for p in drifted:  # within the drift's bounds around the clip's values
        assert 0.5 * params.motion_length <= p.motion_length <= 1.5 * params.motion_length
        assert abs(p.jpeg_quality - params.jpeg_quality) <= 8
    steady, _ = dg.degrade_sequence(frames, 5, config, vary=0.0)
    assert np.array_equal(steady[0], a[0]) and not np.array_equal(steady[2], a[2])


def test_clips_from_stills_move_like_a_camera_and_a_still_camera_holds_still():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)
    still = render_clip(image, 30, 40, 48, 64, 4, seed=3, motion=CameraMotion(static_prob=1.0, object_prob=0.0))
    assert all(np.array_equal(f, still[0]) for f in still)
    assert np.array_equal(still[0], image[30:78, 40:104])  # the camera starts on the box
    moving = CameraMotion(static_prob=0.0, speed=(2.0, 2.0), shake=0.0, rotation=0.0, zoom=0.0, object_prob=0.0)
    path = camera_path(4, 7, moving)
    steps = [np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:])]
    assert np.allclose(steps, 2.0)
    assert render_clip(image, 30, 40, 48, 64, 4, 7, moving)[3].shape == (48, 64, 3)
    # a moving object on a still background: some pixels change, most do not
    obj = render_clip(image, 30, 40, 48, 64, 3, 3, CameraMotion(static_prob=1.0, object_prob=1.0))
    changed = np.any(obj[2] != obj[0], axis=2).mean()
    assert 0.02 < changed < 0.9


def test_training_clips_never_span_a_scene_cut(tmp_path):
    import cv2

    folder = tmp_path / "two_shots"
    folder.mkdir()
    frames = clip_frames(5, size=(56, 72)) + [f // 4 for f in clip_frames(4, seed=2, size=(56, 72))]
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / ("%03d.png" % t)), frame[:, :, ::-1])
    assert D.scene_cuts(frames) == [5]
    clips, counts = D.load_clips([str(folder)])
    assert counts == {"clips": 1, "clip_frames": 9, "scene_cuts": 1}
    assert len({c.group for c in clips[:5]}) == len({c.group for c in clips[5:]}) == 1 != len({c.group for c in clips})
    assert D.clip_starts(clips, 3) == [0, 1, 2, 5, 6]  # none of 3, 4 (they would cross frame 5)
    assert "split at 1 scene cut(s)" in D.describe_counts(counts)


def test_clip_renderer_gives_clips_of_real_frames_and_of_stills(tmp_path):
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    for t, frame in enumerate(clip_frames(6, size=(56, 72))):
        cv2.imwrite(str(folder / ("%03d.png" % t)), frame[:, :, ::-1])
    still = tmp_path / "stills"
    still.mkdir()
    cv2.imwrite(str(still / "a.png"), np.random.default_rng(0).integers(0, 256, (80, 96, 3)).astype(np.uint8))
    clips, counts = D.load_clips([str(folder)])
    items, _ = D.load_items([str(still)])
    assert counts == {"clips": 1, "clip_frames": 6} and [c.frame for c in clips] == list(range(6))
    renderer = D.ClipRenderer(items + clips, "mild", 3, vary=0.2, clip_share=0.5)
    assert renderer.starts == [1, 2, 3, 4] and renderer.stills == [0]  # 6 frames -> 4 starts of 3
    kinds = set()
    for k in range(12):
        spec = D.clip_spec(renderer, k, 40, seed=0)
        sample = renderer.sample(spec)
        assert sample["clean"].shape == sample["degraded"].shape == (3, 40, 40, 3)
        assert np.array_equal(renderer.clean(spec), sample["clean"])  # cache hits rebuild the same ground truth
        item = renderer.items[spec.item]
        kinds.add(item.frame is None)
        if item.frame is not None:  # real frames: consecutive frames of the clip, same box
            for t in range(3):
                source = renderer.items[spec.item + t].clean
                assert np.array_equal(sample["clean"][t], source[spec.top:spec.top + 40, spec.left:spec.left + 40])
    assert kinds == {True, False}
    pool = D.Pool(2)
    for n in range(2):
        sample = renderer.sample(D.clip_spec(renderer, n, 40, 0))
        sample["n"] = n
        pool.put(sample)
    batch = pool.draw(np.random.default_rng(1), 5, 32, True, False)
    assert batch["clean"].shape == (5, 3, 32, 32, 3)


def test_temporal_loss_punishes_flicker_not_a_steady_error():
    from edgerestore.distill.losses import temporal_loss

    gt = torch.rand(2 * 4, 3, 8, 8)
    steady = (gt + 0.1).clamp(0, 1)  # the same error every frame
    flicker = gt + 0.05 * torch.randn_like(gt)
    assert temporal_loss(gt, gt, 4, eps=0.0) == 0
    assert temporal_loss(gt + 0.1, gt, 4, eps=0.0) < 1e-6
    assert temporal_loss(flicker, gt, 4, eps=0.0) > 0.03
    assert temporal_loss(steady, gt, 4) < temporal_loss(flicker, gt, 4)


def test_steadiness_loss_follows_the_motion_and_punishes_what_changes_along_it():
    from edgerestore.distill.losses import steadiness_loss

    texture = torch.rand(1, 3, 16, 24)
    # the picture moves one pixel right per frame: frame t at p is frame t-1 at p - (1, 0)
    clip = torch.cat([torch.roll(texture, t, dims=3) for t in range(4)])
    flows = torch.zeros(4, 2, 16, 24)
    flows[:, 0] = -1.0
    moved = steadiness_loss(clip, 4, flows, eps=0.0)  # exact but for the column rolled round
    assert moved < 0.02
    assert steadiness_loss(clip, 4, torch.zeros_like(flows), eps=0.0) > 10 * moved  # not moved
    flicker = clip + 0.05 * torch.randn_like(clip)
    assert steadiness_loss(flicker, 4, flows, eps=0.0) > 2 * moved + 0.03


# --------------------------------------------------------------------------- the flicker metric


def test_flicker_of_the_ground_truth_is_one_and_noise_or_freezing_raise_it():
    frames = clip_frames(5, size=(64, 80))
    reference = metrics.TemporalReference(frames)
    truth = reference.score(frames)
    assert truth["flicker"] == pytest.approx(1.0) and truth["temporal_error"] == 0.0
    assert reference.valid_fraction > 0.5
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 6, f.shape), 0, 255).astype(np.uint8) for f in frames]
    frozen = [frames[0]] * len(frames)
    assert reference.score(noisy)["flicker"] > 1.3 and reference.score(noisy)["temporal_error"] > 3
    assert reference.score(frozen)["temporal_error"] > 3  # a frozen picture does not escape the metric
    assert metrics.flicker(noisy, frames)["flicker"] == pytest.approx(reference.score(noisy)["flicker"])
    with pytest.raises(ValueError):
        reference.score(noisy[:3])


# --------------------------------------------------------------------------- exports and backends


def _run(backend, frames, stream=None):
    return [backend.infer(frame, stream=stream) for frame in frames]


def test_onnx_state_shapes_and_the_runtime_match_the_student(tmp_path):
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    student = tiny_temporal()
    path = export_onnx(student, tmp_path / "t.onnx", simplify=True)
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = dict((i.name, (i.type, i.shape)) for i in session.get_inputs())
    outputs = dict((o.name, (o.type, o.shape)) for o in session.get_outputs())
    assert inputs["frame"][0] == inputs["previous"][0] == "tensor(uint8)" and inputs["hidden"][0] == "tensor(float)"
    assert len(inputs["hidden"][1]) == 4 and inputs["hidden"][1][1] == 8
    assert set(outputs) == {"restored", "hidden_out"}
    spec = json.loads(session.get_modelmeta().custom_metadata_map["edgerestore.state"])
    assert [(e["input"], e["output"], e["reset"]) for e in spec] == [
        ("previous", "restored", "input"), ("hidden", "hidden_out", "zeros")]
    backend = OnnxRuntimeBackend(threads=1).load(path)
    assert backend.temporal
    frames = clip_frames(4)
    want = reference_clip(student, frames)
    for got, expected in zip(_run(backend, frames), want):
        assert metrics.psnr(got, expected) >= 50.0
    # the second frame really depends on the first: a fresh state gives another picture
    backend.reset()
    assert not np.array_equal(backend.infer(frames[1]), want[1])
    assert backend.info()["temporal"]["resets"]["requested"] == 1


def test_onnx_temporal_graph_blends_in_uint8_and_its_gate_passes_or_blocks_the_previous_frame(tmp_path):
    import onnx
    import onnxruntime as ort

    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    for agreement in (False, True):
        path = export_onnx(tiny_temporal(agreement=agreement), tmp_path / "t.onnx")
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        ops = [node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
        # the blend is two QLinearMul and a QLinearAdd; no float tail or blend over the frame is
        # left; the agreement term reads the previous frame's float rows once (|frame - previous|,
        # pooled per block)
        assert ops.count("QLinearMul") == 2 and ops.count("QLinearAdd") == 2
        assert not {"ConvTranspose", "Resize", "Clip"} & set(ops)
        assert [ops.count(op) for op in ("Sub", "Abs", "AveragePool")] == [agreement] * 3
    student = tiny_temporal()
    frames = clip_frames(2)
    with torch.no_grad():
        student.gate.weight.zero_()
        student.gate_bias.fill_(40.0)  # open: the previous output comes through unchanged
    backend = OnnxRuntimeBackend(threads=1).load(export_onnx(student, tmp_path / "open.onnx"))
    first = backend.infer(frames[0])
    assert np.array_equal(backend.infer(frames[1]), first)
    with torch.no_grad():
        student.gate_bias.fill_(-40.0)  # closed: the network's own result (the features still mixed)
    backend = OnnxRuntimeBackend(threads=1).load(export_onnx(student, tmp_path / "closed.onnx"))
    for frame, want in zip(frames, reference_clip(student, frames)):
        diff = np.abs(backend.infer(frame).astype(int) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.001  # float sums a hair off .5 may round apart


def test_onnx_fp16_keeps_the_state_contract(tmp_path):
    from edgerestore.export.onnx import to_fp16
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    student = tiny_temporal()
    fp16 = to_fp16(export_onnx(student, tmp_path / "t.onnx"), tmp_path / "t16.onnx")
    backend = OnnxRuntimeBackend(threads=1).load(fp16)
    frames = clip_frames(3)
    for got, expected in zip(_run(backend, frames), reference_clip(student, frames)):
        assert metrics.psnr(got, expected) >= 40.0


def test_tflite_state_shapes_and_the_runtime_match_the_student(tmp_path):
    pytest.importorskip("litert_torch")
    from edgerestore.export.tflite import convert_fp32, read_io
    from edgerestore.runtime.backends.tflite import TFLiteBackend

    student = tiny_temporal()
    path = convert_fp32(student, tmp_path / "t.tflite", H, W)
    io = read_io(path)
    assert [i["shape"] for i in io["inputs"]] == [[1, H, W, 3], [1, H, W, 3], [1, H // 4, W // 4, 8]]
    assert [i["dtype"] for i in io["inputs"]] == ["uint8", "uint8", "float32"]
    assert sorted(tuple(o["shape"]) for o in io["outputs"]) == sorted([(1, H, W, 3), (1, H // 4, W // 4, 8)])
    backend = TFLiteBackend(threads=1).load(path)
    assert [e["input"] for e in backend.state_spec] == ["previous", "hidden"]
    frames = clip_frames(4)
    for got, expected in zip(_run(backend, frames), reference_clip(student, frames)):
        assert metrics.psnr(got, expected) >= 50.0


def test_tensorrt_graph_carries_the_state_and_the_backend_feeds_it(tmp_path):
    """The float-I/O graph TensorRT builds from, and the TensorRT backend (against the stand-in of
    TensorRT's API, which runs the graph with ONNX Runtime) over a clip."""
    from edgerestore.export.bundle import export_bundle
    from edgerestore.models.checkpoint import save_student
    from edgerestore.runtime.backends.tensorrt import TensorRTBackend
    from tests.trt_standin import make_pycuda, make_tensorrt

    student = tiny_temporal()
    checkpoint = save_student(tmp_path / "t.pt", student)
    result = export_bundle(str(checkpoint), "jetson-nano", tmp_path / "bundle", formats=["tensorrt-fp16"],
                           size=(H, W), verify=False)
    artifact = result.manifest["artifacts"][0]
    state = artifact["io"]["state"]
    assert [(e["input"], e["shape"]) for e in state] == [("previous", [1, H, W, 3]), ("hidden", [1, 8, H // 4, W // 4])]
    import onnx

    graph = onnx.load(str(result.out_dir / artifact["file"])).graph
    dims = dict((v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in list(graph.input) + list(graph.output))
    assert dims == {"frame": [1, H, W, 3], "previous": [1, H, W, 3], "hidden": [1, 8, H // 4, W // 4],
                    "restored": [1, H, W, 3], "hidden_out": [1, 8, H // 4, W // 4]}
    for version in ("8.2.1", "10.3.0"):  # bindings and named tensors
        trt = make_tensorrt(version, fast_int8=True)
        backend = TensorRTBackend(trt=trt, cuda=make_pycuda(trt=trt), cache_dir=str(tmp_path / version))
        backend.load(str(result.out_dir / artifact["file"]))
        assert backend.temporal
        frames = clip_frames(3)
        for got, expected in zip(_run(backend, frames), reference_clip(student, frames)):
            assert metrics.psnr(got, expected) >= 45.0


def test_temporal_bundle_verifies_every_format_it_builds(tmp_path):
    pytest.importorskip("litert_torch")
    from edgerestore.export.bundle import export_bundle
    from edgerestore.models.checkpoint import save_student
    from edgerestore.runtime.bundle import load_bundle

    checkpoint = save_student(tmp_path / "t.pt", tiny_temporal())
    result = export_bundle(str(checkpoint), "rpi5", tmp_path / "bundle", formats=["tflite", "onnx"], size=(H, W))
    assert [r.status for r in result.rows] == ["ok", "ok"], [r.note for r in result.rows]
    assert all(r.frames == 6 for r in result.rows)  # 3 hold-out photos, each twice in a row (state exercised)
    bundle = load_bundle(result.out_dir)
    assert all(a["io"]["state"] for a in bundle.artifacts)


# --------------------------------------------------------------------------- the runtime


@pytest.fixture(scope="module")
def temporal_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("temporal") / "t.onnx"
    return export_onnx(tiny_temporal(), path)


def test_state_is_kept_per_stream(temporal_onnx):
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    a_frames, b_frames = clip_frames(3, seed=1), clip_frames(3, seed=2)
    alone = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    want_a, want_b = _run(alone, a_frames, "a"), _run(alone, b_frames, "b")
    mixed = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    for t in range(3):  # two cameras interleaved through one backend
        assert np.array_equal(mixed.infer(a_frames[t], stream="a"), want_a[t])
        assert np.array_equal(mixed.infer(b_frames[t], stream="b"), want_b[t])
    assert mixed.info()["temporal"]["streams"] == 2


def test_a_scene_cut_starts_the_state_afresh(temporal_onnx):
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    first, second = clip_frames(3, seed=1), clip_frames(2, seed=9)
    backend = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    fresh = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    _run(backend, first)
    assert backend.resets["cut"] == 0  # a pan is not a cut
    assert np.array_equal(backend.infer(second[0]), fresh.infer(second[0]))  # another scene: no ghost of the last
    assert backend.resets["cut"] == 1
    blind = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    blind.scene_cuts = False
    _run(blind, first)
    assert not np.array_equal(blind.infer(second[0]), fresh.infer(second[0]))
    # a new frame size is a fresh stream too
    backend.infer(np.ascontiguousarray(second[1][:40, :56]))
    assert backend.resets["size"] == 1


def test_cut_detector_ignores_noise_and_motion_but_not_another_scene(data_dir):
    from edgerestore.runtime.backends.base import CUT_THRESHOLD, thumbnail
    from tests.conftest import read_rgb

    frames = [read_rgb(p) for p in sorted((data_dir / "video" / "tram_640x360").glob("*.png"))[:6]]
    degraded, _ = dg.degrade_sequence(frames, 3, dg.PRESETS["strong"])
    diffs = [np.abs(thumbnail(b) - thumbnail(a)).mean() for a, b in zip(degraded, degraded[1:])]
    assert max(diffs) < CUT_THRESHOLD / 2
    other = read_rgb(sorted((data_dir / "video" / "street_320x180").glob("*.png"))[0])
    import cv2

    other = cv2.resize(other, (640, 360))
    assert np.abs(thumbnail(other) - thumbnail(degraded[-1])).mean() > 2 * CUT_THRESHOLD


def test_pipeline_resets_after_a_reconnect_a_loop_and_bypass(temporal_onnx):
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from edgerestore.runtime.frames import Frame
    from edgerestore.runtime.pipeline import Pipeline
    from edgerestore.runtime.sources.base import Source

    frames = clip_frames(6, seed=1)

    class Clip(Source):
        size = (W, H)

        def __iter__(self):
            for index, image in enumerate(frames):
                yield Frame(image, index, discontinuity=index == 3)  # e.g. a stream that reconnected

    class Keep(object):
        name = "keep"

        def __init__(self):
            self.images = []

        def write(self, frame):
            self.images.append(frame.image)

        def close(self):
            pass

    backend = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    sink = Keep()
    Pipeline(Clip(), backend, [sink], live=False).run()
    assert backend.resets["requested"] == 1
    fresh = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    assert np.array_equal(sink.images[3], fresh.infer(frames[3]))  # restarted at the reconnect


def test_looping_sources_mark_their_restart(tmp_path, real_clip):
    import cv2

    from edgerestore.runtime.sources import open_source

    for index, frame in enumerate(clip_frames(2)):
        cv2.imwrite(str(tmp_path / ("%d.png" % index)), frame)
    for uri in (str(tmp_path), str(real_clip)):
        source = open_source(uri, loop=True)
        try:
            marks = []
            for frame in source:
                marks.append(frame.discontinuity)
                if len(marks) == 40:
                    break
        finally:
            source.close()
        count = 2 if uri == str(tmp_path) else 36  # frames per pass
        assert marks == [i > 0 and i % count == 0 for i in range(40)], uri


def test_bench_scores_clips_with_flicker(temporal_onnx, tmp_path):
    from edgerestore.benchmarks.bench import evaluate_video
    from edgerestore.benchmarks.evalset import EvalClip
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    clean = clip_frames(5)
    degraded, _ = dg.degrade_sequence(clean, 2, dg.PRESETS["mild"])
    clip = EvalClip("pan", degraded, clean)
    backend = OnnxRuntimeBackend(threads=1).load(temporal_onnx)
    block = evaluate_video(backend, [clip], {"pan": metrics.TemporalReference(clean)})
    assert set(block["pan"]) >= {"psnr", "ssim", "flicker", "temporal_error", "frames"} and block["pan"]["frames"] == 5
    again = evaluate_video(backend, [clip], {"pan": metrics.TemporalReference(clean)})
    assert again["pan"]["psnr"] == block["pan"]["psnr"]  # each clip starts from a fresh state


# --------------------------------------------------------------------------- training on clips


def test_tiny_temporal_run_trains_on_clips_and_its_checkpoint_exports(data_dir, tmp_path):
    import cv2

    from edgerestore.models.checkpoint import load_student
    from tests.conftest import invoke_cli
    from tests.distill_helpers import read_log, small_images, tiny_args

    images = small_images(data_dir, tmp_path / "images", count=4)
    clip = tmp_path / "clip"
    clip.mkdir()
    for path in sorted((data_dir / "video" / "street_320x180").glob("*.png"))[:8]:
        frame = cv2.imread(str(path))
        cv2.imwrite(str(clip / path.name), cv2.resize(frame, (128, 72), interpolation=cv2.INTER_AREA))
    env = {"EDGERESTORE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    result = invoke_cli("distill", images, "--student", "nano-t", "--sequence", 3, "--clips", clip, "--out", out,
                     "--steps", 12, "-q", "--set", "student.config={width: 8}", "--set", "loss.temporal=0.5",
                     "--set", "loss.steady=0.5", "--set", "data.val_frames=3", *tiny_args(train__val_every=6), env=env)
    assert "done: 12 steps" in result.stdout
    rows = read_log(out / "log.csv")
    assert {"temporal", "steady", "val_temporal"} <= set(rows[0]) and rows[-1]["val_temporal"] not in ("", "nan")
    student, info = load_student(out / "student.pt")
    assert student.temporal and student.config.width == 8
    assert "1 clip(s) of 8 frames" in info["meta"]["data"]
    path = export_onnx(student, tmp_path / "t.onnx")
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    assert OnnxRuntimeBackend(threads=1).load(path).temporal
    # a temporal student without clips, and clips without sequences, are one-line errors
    bad = invoke_cli("distill", images, "--student", "nano-t", "--out", tmp_path / "bad", "--steps", 2, "-q",
                  *tiny_args(), check=False, env=env)
    assert bad.returncode != 0 and "set data.sequence >= 2" in bad.stderr
    bad = invoke_cli("distill", images, "--student", "nano", "--clips", clip, "--out", tmp_path / "bad2", "--steps", 2,
                  "-q", *tiny_args(), check=False, env=env)
    assert bad.returncode != 0 and "data.clips are for sequence training" in bad.stderr
