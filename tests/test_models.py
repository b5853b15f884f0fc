"""Every student preset: forward pass, MAC budget counted from its layers, ONNX parity."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgerestore.errors import CheckpointError, InputNotFoundError, UnknownNameError, UnsupportedInputError
from edgerestore.export.onnx import export_onnx, reference_uint8
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.macs import count_macs, macs_per_pixel
from edgerestore.models.presets import PRESETS, get_preset
from edgerestore.models.student import StudentNet
from edgerestore.runtime.quality import psnr


def _randomised(config, seed=0):
    torch.manual_seed(seed)
    net = StudentNet(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_stays_under_its_mac_budget(name):
    preset = PRESETS[name]
    net = StudentNet(preset.config)
    per_px = macs_per_pixel(net, 128, 256)
    assert 0 < per_px <= preset.budget, (name, per_px, preset.budget)
    # The count scales with the frame: MACs/px must not depend on the size.
    assert macs_per_pixel(net, 64, 64) == pytest.approx(per_px)


def test_mac_counter_counts_convolutions_exactly():
    net = StudentNet(StudentConfig(scale=4, width=8, blocks=1))
    h, w = 32, 64
    low = (h // 4) * (w // 4)
    head = low * 8 * 3 * 4 * 4
    body = 2 * low * 8 * 8 * 9
    tail = low * 8 * 3 * 4 * 4
    assert count_macs(net, h, w) == head + body + tail


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_forward_keeps_shape_and_starts_as_identity(name):
    net = StudentNet(PRESETS[name].config).eval()
    s = net.stride
    x = torch.rand(2, 3, 4 * s, 6 * s)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.equal(y, x)  # zero-initialised tail: an untrained student changes nothing


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_onnx_export_matches_pytorch(name, tmp_path):
    net = _randomised(PRESETS[name].config)
    path = export_onnx(net, tmp_path / (name + ".onnx"), metadata={"preset": name})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["edgerestore.contract"] == "uint8-nhwc-rgb"
    assert int(meta["edgerestore.stride"]) == net.stride
    inp = session.get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[0] == 1 and inp.shape[3] == 3
    import onnx

    assert max(op.version for op in onnx.load(str(path)).opset_import if op.domain in ("", "ai.onnx")) <= 13
    rng = np.random.default_rng(1)
    for h, w in ((net.stride * 3, net.stride * 5), (net.stride * 8, net.stride * 4)):
        state = None
        for _ in range(2 if net.temporal else 1):  # temporal: the second frame runs on the first's state
            frame = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
            feeds = {"frame": frame}
            if net.temporal:
                want, following = reference_uint8(net, torch.from_numpy(frame), state)
                previous, hidden = state if state is not None else (torch.from_numpy(frame), None)
                if hidden is None:
                    hidden = torch.zeros(1, net.config.width, h // net.config.scale, w // net.config.scale)
                feeds.update(previous=previous.numpy(), hidden=hidden.numpy())
                got, got_hidden = session.run(None, feeds)
                assert got_hidden.shape == tuple(following[1].shape)
                np.testing.assert_allclose(got_hidden, following[1].numpy(), atol=1e-3)
                state = following
            else:
                level = 0.7 if net.config.level_input else 0.0  # a noise-level student gets its level
                if net.config.level_input:
                    feeds["noise_level"] = np.array([level], np.float32)
                codec = (0.0, 0.9) if net.config.codec_input else None  # a codec student its codec
                if codec:
                    feeds["codec"] = np.array(codec, np.float32)
                want = reference_uint8(net, torch.from_numpy(frame), level=level, codec=codec)
                got = session.run(None, feeds)[0]
            want = want.numpy()
            assert got.dtype == np.uint8 and got.shape == frame.shape
            assert psnr(got, want) >= 50.0
            assert not np.array_equal(got, frame)  # the random student does change the picture


@pytest.mark.parametrize("name", ["pico", "nano"])
def test_fp32_onnx_graph_is_what_onnx_runtime_fuses(name, tmp_path):
    """The FP32 graph writes the frame with uint8 copies and one fused add: after ONNX Runtime's
    optimizer no transposed convolution writes the frame (only nano's context branch keeps its
    low-resolution one), no Clip, and the residual is one QLinearAdd. Feature-resolution residual
    Adds may stay (ONNX Runtime 1.32 fuses them into the convolution only when the width is a
    multiple of 8), one per residual block at most."""
    import onnx

    net = _randomised(PRESETS[name].config)
    path = export_onnx(net, tmp_path / "m.onnx", simplify=True)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimized.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QLinearAdd") == 1 and ops.count("Cast") == 1, ops
    assert ops.count("ConvTranspose") == (1 if net.config.context_width else 0), ops
    assert [n.op_type for n in graph.node if "restored" in n.output] == ["QLinearAdd"]
    for absent in ("Clip", "DequantizeLinear"):
        assert absent not in ops, (absent, ops)
    residual_adds = net.config.blocks + net.config.context_blocks + bool(net.config.context_width)
    assert ops.count("Add") <= residual_adds, ops


def test_fp32_graph_clips_corrections_beyond_127_only(tmp_path):
    """The FP32 graph rounds the correction to uint8 around 128: a student that brightens by 100
    pixel values is exact, one that brightens by 200 is cut at +127."""
    for shift, expected in ((100.0, 100), (200.0, 127)):
        net = StudentNet(PRESETS["pico"].config).eval()
        with torch.no_grad():
            # every feature 1 (head bias through the ReLU, the residual body adds 0); the tail
            # turns them into +shift on every pixel and colour
            for parameter in net.parameters():
                parameter.zero_()
            net.head.bias.fill_(1.0)
            net.tail.weight.fill_(shift / 255.0 / net.config.width)
        path = export_onnx(net, tmp_path / "shift.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        frame = np.zeros((1, 8, 16, 3), np.uint8)
        got = session.run(None, {"frame": frame})[0]
        assert np.all(got == expected), (shift, np.unique(got))


def test_checkpoint_round_trip(tmp_path):
    net = _randomised(PRESETS["pico"].config)
    path = save_student(tmp_path / "pico.pt", net, preset="pico", meta={"note": "test"})
    loaded, info = load_student(path, expect=PRESETS["pico"].config)
    assert info["preset"] == "pico" and info["meta"]["note"] == "test"
    for key, value in net.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_checkpoint_of_another_architecture_names_the_difference(tmp_path):
    path = save_student(tmp_path / "large.pt", StudentNet(PRESETS["large"].config), preset="large")
    with pytest.raises(CheckpointError, match="different architecture: scale=2"):
        load_student(path, expect=PRESETS["pico"].config)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_student(tmp_path / "pico.pt", StudentNet(PRESETS["pico"].config))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="is the file complete"):
        load_student(path)


def test_missing_checkpoint_and_unknown_preset():
    with pytest.raises(InputNotFoundError):
        load_student("/nonexistent/student.pt")
    with pytest.raises(UnknownNameError, match="choose one of: large, nano, nano-codec, nano-fast, nano-level, nano-t, pico, pico-t, small, small-codec, small-level, small-t"):
        get_preset("giga")


def test_filter_bases_grow_from_a_checkpoint_without_them_and_start_as_it(tmp_path):
    from dataclasses import replace

    base = get_preset("nano-fast").config
    path = save_student(tmp_path / "fast.pt", _randomised(base), preset="nano-fast")
    grown, _ = load_student(path, expect=replace(base, filter_bases=1), grow=True)
    plain, _ = load_student(path)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(grown(x), plain(x))  # zero weights: the same network
        grown.bases.weights[0].weight.fill_(0.5)
        assert not torch.equal(grown(x), plain(x))
    assert macs_per_pixel(plain) + 27 < macs_per_pixel(grown) <= 1000  # the filter and its weights count
    with pytest.raises(CheckpointError, match="different architecture"):
        load_student(path, expect=replace(base, filter_bases=1))  # only with grow
    one = save_student(tmp_path / "one.pt", grown, preset=None)  # a second basis grows on a first one
    two, _ = load_student(one, expect=replace(base, filter_bases=2), grow=True)
    with torch.no_grad():
        assert torch.equal(two(x), grown(x))
    with pytest.raises(CheckpointError, match="different architecture"):
        load_student(one, expect=replace(base, filter_bases=0), grow=True)  # grow never shrinks
    with pytest.raises(CheckpointError, match="different architecture"):
        load_student(path, expect=replace(base, width=16), grow=True)  # only the growable fields
    with pytest.raises(ValueError, match="filter_bases is 0, 1"):
        StudentNet(replace(base, filter_bases=3))
    with pytest.raises(ValueError, match="frame-by-frame"):
        StudentNet(replace(get_preset("nano-t").config, filter_bases=1))


def test_an_oriented_bank_grows_as_the_same_network_and_sharpens_along_its_angle(tmp_path):
    from dataclasses import replace

    from edgerestore.export.bundle import export_bundle
    from edgerestore.models.student import BANK_SIZE

    base = get_preset("small").config
    path = save_student(tmp_path / "small.pt", _randomised(base), preset="small")
    grown, _ = load_student(path, expect=replace(base, oriented_bank=4), grow=True)
    plain, _ = load_student(path)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(grown(x), plain(x))  # zero weights: the same network
    # each filter starts as delta minus a line blur: it sums to zero and its response to a line at
    # its own angle is the weakest of the bank (that line is already blurred along it)
    filters = grown.bank.filters.weight[:, 0]
    assert filters.shape == (4, BANK_SIZE, BANK_SIZE)
    assert filters.sum((1, 2)).abs().max() < 1e-5
    across = torch.zeros(1, 1, 21, 21)
    across[0, 0, 10, 4:17] = 1.0  # a horizontal line: angle 0
    response = torch.nn.functional.conv2d(across, grown.bank.filters.weight, padding=BANK_SIZE // 2)
    energy = response[0, :, 10, 7:14].pow(2).sum(1)
    assert int(energy.argmin()) == 0
    assert macs_per_pixel(grown) == macs_per_pixel(plain) + 4 * BANK_SIZE**2 + 4 * base.width
    with torch.no_grad():
        grown.bank.weights.weight.fill_(0.3)
        changed = grown(x)
        assert not torch.equal(changed, plain(x))
        # the correction is the same in every colour (the bank reads luma)
        bank = changed - plain(x)
        assert torch.allclose(bank[:, 0], bank[:, 1], atol=1e-6) and torch.allclose(bank[:, 0], bank[:, 2], atol=1e-6)
        grown.scale_residual(0.0)
        assert torch.allclose(grown(x), x)
    with pytest.raises(ValueError, match="frame-by-frame"):
        StudentNet(replace(get_preset("nano-t").config, oriented_bank=2))
    banked = save_student(tmp_path / "bank.pt", grown, preset=None)
    with pytest.raises(UnsupportedInputError, match="oriented_bank"):
        export_bundle(str(banked), "cpu", tmp_path / "bundle", formats=["onnx"])
    assert not (tmp_path / "bundle").exists()
