"""``edgerestore export``: every (target x format) the profiles allow, from a tiny student, verified.

Real tools throughout: torch.onnx, onnxslim, ONNX Runtime (quantization and inference),
litert-torch + ai-edge-quantizer (conversion) and ai-edge-litert (inference), on the package's
real calibration photos. TensorRT artifacts are verified by ONNX Runtime with the engine's
precision simulated (no TensorRT here; tests/test_tensorrt.py covers the board side).
"""

import json
import math

import numpy as np
import onnx
import pytest

from edgerestore.export.targets import FORMATS, TARGETS
from edgerestore.export.verify import BARS, INT8_GT_MARGIN, Row, format_table, judge
from edgerestore.files import file_sha256
from edgerestore.runtime.bundle import load_bundle
from tests.export_helpers import SIZE, copy_bundle, exported, tiny_checkpoint, workdir


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_format_of_every_target_exports_and_verifies(target):
    result = exported(target)
    rows = {row.format: row for row in result.rows}
    assert list(rows) == list(TARGETS[target].formats)
    for name, row in rows.items():
        assert row.status == "ok", "%s %s: %s" % (target, name, row.note)
        assert row.parity_psnr >= BARS[row.precision]
        assert row.frames == 3  # the three hold-out photos
        if row.precision == "int8":
            assert row.gt_psnr >= row.reference_gt_psnr - INT8_GT_MARGIN
        if FORMATS[name].backend != "tensorrt":
            assert row.fps and row.fps > 0
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["target"] == target and manifest["input_size"] == list(SIZE)
    assert manifest["model"]["source_sha256"] == file_sha256(str(tiny_checkpoint()))
    assert manifest["calibration"]["source"] == "package" or "onnx-int8" not in rows
    for artifact in manifest["artifacts"]:
        for name in [artifact["file"]] + artifact["extra_files"]:
            assert manifest["files"][name] == file_sha256(str(result.out_dir / name))
        assert artifact["verify"]["status"] == "ok"
    load_bundle(result.out_dir)  # the runtime accepts it


def test_onnx_artifacts_carry_the_targets_opset_and_ir_version():
    for target in ("jetson-nano", "jetson-orin"):
        result = exported(target)
        row = TARGETS[target]
        for name in ("model.trt.onnx", "model.onnx"):
            model = onnx.load(str(result.out_dir / name))
            opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
            assert (opset, model.ir_version) == (row.opset, row.ir_version), (target, name)
        trt = onnx.load(str(result.out_dir / "model.trt.onnx"))
        dims = [d.dim_value for d in trt.graph.input[0].type.tensor_type.shape.dim]
        assert dims == [1, SIZE[0], SIZE[1], 3]  # TensorRT: fixed size, float32 I/O
        assert trt.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        dynamic = onnx.load(str(result.out_dir / "model.onnx"))
        assert dynamic.graph.input[0].type.tensor_type.shape.dim[1].dim_param  # ONNX Runtime: any size


def test_int8_onnx_graph_is_what_onnx_runtime_fuses(tmp_path):
    """The INT8 graph runs as QLinearConv / QLinearAdd on uint8 data: no float conv, no Cast, no Transpose left."""
    import onnxruntime as ort

    result = exported("cpu")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(result.out_dir / "model-int8.onnx"), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert ops.count("QLinearConv") == 4  # head, two body convolutions, tail
    for absent in ("Conv", "ConvTranspose", "Cast", "Clip", "Transpose", "DequantizeLinear", "QuantizeLinear"):
        assert absent not in ops, (absent, ops)
    model = onnx.load(str(result.out_dir / "model-int8.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edgerestore.contract"] == "uint8-nhwc-rgb" and "percentile" in meta["edgerestore.quantization"]


def test_int8_quality_on_real_frames_with_a_context_branch(tmp_path):
    """A student with the context branch (stride 8) also quantizes within the bars (ONNX Runtime +
    TFLite), and its ONNX Runtime graph keeps no float transposed convolution: the branch is a
    second, coarse correction (four QLinearConv + the coarse tail, three QLinearAdd)."""
    import onnxruntime as ort

    checkpoint = tiny_checkpoint("tiny-context", context=True, seed=3)
    result = exported("rpi5", formats=["tflite-int8", "onnx-int8"], checkpoint=checkpoint)
    for row in result.rows:
        assert row.status == "ok", (row.format, row.note)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(result.out_dir / "model-int8.onnx"), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    for absent in ("Conv", "ConvTranspose", "DequantizeLinear", "QuantizeLinear"):
        assert absent not in ops, (absent, ops)
    assert ops.count("QLinearAdd") >= 3, ops


def test_judge_applies_the_bars():
    assert judge("fp32", 44.9, 30.0, 30.0)[0] == "parity"
    assert judge("fp16", 45.1, 30.0, 30.0) == ("ok", "")
    assert judge("int8", 37.9, 30.0, 30.0)[0] == "parity"
    status, note = judge("int8", 40.0, 29.6, 30.0)
    assert status == "parity" and "0.3 dB" in note
    assert judge("int8", 40.0, 29.75, 30.0)[0] == "ok"


def test_a_failing_format_is_a_row_and_the_others_go_on(monkeypatch, tmp_path):
    from edgerestore.export import bundle as bundle_module
    from edgerestore.export import targets

    broken = targets.Format("onnx-int8", "onnxruntime", "int8", "model-int8.onnx", "math:nope", False, "broken")
    monkeypatch.setitem(targets.FORMATS, "onnx-int8", broken)
    result = bundle_module.export_bundle(str(tiny_checkpoint()), "cpu", tmp_path / "b", size=SIZE)
    statuses = {row.format: row.status for row in result.rows}
    assert statuses == {"onnx-int8": "failed", "onnx": "ok"}
    assert "AttributeError" in result.rows[0].note
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [a["format"] for a in manifest["artifacts"]] == ["onnx"]
    table = format_table(result.rows)
    assert "❌ failed" in table and "✅ ok" in table


def test_table_marks_parity_failures():
    rows = [Row("cpu", "onnx-int8", "int8", "parity", 0.1, 30.0, 20.0, 20.5, 100.0, 3, note="parity 30.00 dB < 38 dB")]
    table = format_table(rows)
    assert "❎ parity" in table and "parity 30.00 dB < 38 dB" in table


def test_export_command_end_to_end(cli, tmp_path):
    out = tmp_path / "bundle"
    result = cli("export", tiny_checkpoint(), "--target", "cpu", "--size", "64x96", "--out", out, "-q")
    assert "✅ ok" in result.stdout and "onnx-int8" in result.stdout
    assert "2 of 2 artifact(s) ok" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["format"] for a in manifest["artifacts"]] == ["onnx-int8", "onnx"]
    assert not (tmp_path / "bundle.partial").exists()
    # Re-exporting over a bundle replaces it.
    cli("export", tiny_checkpoint(), "--target", "cpu", "--size", "64x96", "--out", out, "-q", "--format", "onnx")
    assert [a["format"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]] == ["onnx"]


def test_int8_on_a_jetson_nano_warns_once_and_builds_fp16(cli, tmp_path):
    result = cli("export", tiny_checkpoint(), "--target", "jetson-nano", "--precision", "int8", "--size", "64x96",
                 "--out", tmp_path / "nano", "-q", "--no-verify")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "sm_53" in warnings[0]
    formats = [a["format"] for a in json.loads((tmp_path / "nano" / "manifest.json").read_text())["artifacts"]]
    assert formats == ["tensorrt-fp16", "onnx-fp16"]


def test_user_calibration_frames_from_a_video(real_clip, tmp_path):
    from edgerestore.export.bundle import export_bundle

    result = export_bundle(str(tiny_checkpoint()), "cpu", tmp_path / "b", formats=["onnx-int8"], size=SIZE,
                           calib=str(real_clip))
    assert result.rows[0].status == "ok"
    assert result.manifest["calibration"]["source"] == str(real_clip)
    assert result.manifest["calibration"]["frames"] == 16


def _one_line_error(result, code):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_unknown_target_lists_the_valid_ones(cli):
    line = _one_line_error(cli("export", tiny_checkpoint(), "--target", "jetson-tx2", check=False), 2)
    for name in TARGETS:
        assert name in line


def test_checkpoint_of_another_architecture(cli, shared_dir, tmp_path):
    restormer = shared_dir / "fixtures" / "restormer" / "tiny_withbias.pth"
    line = _one_line_error(cli("export", restormer, "--target", "cpu", check=False), 3)
    assert "not an edgerestore student checkpoint" in line
    import torch

    bad = tmp_path / "bad.pt"
    data = torch.load(str(tiny_checkpoint()), weights_only=True)
    data["state_dict"]["head.weight"] = torch.zeros(8, 3, 2, 2)  # shapes of another patch size
    torch.save(data, str(bad))
    line = _one_line_error(cli("export", bad, "--target", "cpu", check=False), 3)
    assert "head.weight" in line


def test_empty_calibration_folder(cli, tmp_path):
    empty = tmp_path / "frames"
    empty.mkdir()
    line = _one_line_error(cli("export", tiny_checkpoint(), "--target", "cpu", "--size", "64x96",
                               "--calib", empty, "--out", tmp_path / "b", check=False), 2)
    assert "holds no images" in line
    assert not (tmp_path / "b").exists()


def test_bad_sizes_and_formats(cli, tmp_path):
    line = _one_line_error(cli("export", tiny_checkpoint(), "--target", "rpi4", "--size", "62x96",
                               "--out", tmp_path / "b", check=False), 6)
    assert "--size 64x96" in line
    line = _one_line_error(cli("export", tiny_checkpoint(), "--target", "rpi4", "--format", "tensorrt-fp16",
                               "--out", tmp_path / "b", check=False), 2)
    assert "tflite-int8" in line
    line = _one_line_error(cli("export", "large", "--target", "cpu", "--out", tmp_path / "b", check=False), 2)
    assert "no shipped weights" in line


def test_a_partial_export_never_replaces_a_bundle(monkeypatch, tmp_path):
    """An export that dies half-way leaves the previous bundle as it was."""
    from edgerestore.export import bundle as bundle_module

    out = copy_bundle(exported("cpu"), tmp_path / "b")
    before = (out / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_module, "file_sha256", boom)
    with pytest.raises(KeyboardInterrupt):
        bundle_module.export_bundle(str(tiny_checkpoint()), "cpu", out, size=SIZE, verify=False)
    assert (out / "manifest.json").read_text() == before
    assert not (tmp_path / "b.partial").exists()


def test_verification_figures_are_real(tmp_path):
    """Parity is measured, not assumed: a weaker INT8 calibration on one frame still passes, identity differs."""
    result = exported("cpu")
    row = {r.format: r for r in result.rows}["onnx-int8"]
    assert 38 <= row.parity_psnr < 99  # quantization changes pixels
    assert math.isfinite(row.gt_psnr) and abs(row.gt_psnr - row.reference_gt_psnr) < INT8_GT_MARGIN
    # The hold-out frames are degraded real photos: restoring them is not the identity.
    from edgerestore.export.calibration import build

    pairs = build(SIZE).holdout
    assert all(np.abs(x.astype(int) - t).mean() > 1 for x, t in pairs)
    assert workdir().exists()


@pytest.mark.parametrize("bases", [0, 1])
def test_int8_core_splits_a_context_branch_into_fine_and_coarse_corrections_exactly(bases):
    """In float, frame + fine + coarse correction (BlockCore, the graph before quantization) is the
    student's own output: the context branch's transposed convolution folded into the tail, the
    filter bases computed from the planar frame."""
    import torch

    from edgerestore.export.quantize import BlockCore, core_feed, from_blocks
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    student = StudentNet(StudentConfig(scale=2, width=8, blocks=1, context_width=16, context_blocks=1,
                                       filter_bases=bases)).eval()
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.normal_(0, 0.1)
    frame = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    with torch.no_grad():
        fine, coarse = BlockCore(student).eval()(*[torch.from_numpy(v) for v in core_feed(student, frame).values()])
        want = student(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()
    got = frame + from_blocks(fine.numpy(), 2) + from_blocks(coarse.numpy(), 4)
    assert np.abs(coarse.numpy()).max() > 1.0  # the branch does contribute
    np.testing.assert_allclose(got, want * 255.0, atol=1e-2)


def test_export_output_has_no_native_log_lines_nor_a_bar_when_piped(cli_process, tmp_path):
    """TensorFlow's oneDNN notice, absl's pre-init warning and LiteRT's XNNPACK line leaked into
    export's output; they show with --debug only. Piped output gets no progress bar."""
    out = tmp_path / "bundle"
    result = cli_process("export", tiny_checkpoint(), "--target", "rpi4", "--size", "64x96", "--out", out,
                 "--format", "tflite-int8")
    text = result.stdout + result.stderr
    for noise in ("oneDNN", "absl::InitializeLog", "XNNPACK", "exporting"):
        assert noise not in text, noise
    assert "exported tflite-int8" in result.stdout and "✅ ok" in result.stdout
    debug = cli_process("export", tiny_checkpoint(), "--target", "rpi4", "--size", "64x96", "--out", tmp_path / "b2",
                "--format", "tflite-int8", "--debug")
    assert "XNNPACK" in debug.stdout + debug.stderr


def test_family_targets_make_one_bundle_every_board_of_the_family_runs(cli, tmp_path):
    """`edgerestore export nano --target jetson` said "unknown target 'jetson'"."""
    from edgerestore.errors import BundleError

    result = exported("jetson")
    bundle = load_bundle(result.out_dir, expect_target="jetson-nano")
    formats = [a["format"] for a in bundle.artifacts]
    assert formats[:2] == ["tensorrt-int8", "tensorrt-fp16"] and "onnx" in formats
    int8 = bundle.artifacts[0]
    assert int8.get("calibration_cache")  # Xavier/Orin build INT8 from it; a Nano builds FP16
    model = onnx.load(str(bundle.path(int8)))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 13 and model.ir_version <= 7
    for board in ("jetson-xavier-nx", "jetson-orin"):
        load_bundle(result.out_dir, expect_target=board, check=False)
    with pytest.raises(BundleError, match="made for jetson, not rpi4"):
        load_bundle(result.out_dir, expect_target="rpi4", check=False)
    plan = cli("build-engine", result.out_dir, "--check", env={"EDGERESTORE_TARGET": "jetson-nano"})
    assert "building FP16 instead" in plan.stderr and "FP16 (builder flags: FP16)" in plan.stdout
    pi = exported("pi", formats=["onnx"])
    load_bundle(pi.out_dir, expect_target="rpi5", check=False)


def test_board_detection_picks_the_target():
    from edgerestore.devices.detect import board_target

    def board(kind, model):
        return {"kind": kind, "model": model, "name": model}

    assert board_target(board("jetson", "NVIDIA Jetson Nano Developer Kit")) == "jetson-nano"
    assert board_target(board("jetson", "NVIDIA Jetson Xavier NX Developer Kit")) == "jetson-xavier-nx"
    assert board_target(board("jetson", "NVIDIA Jetson Orin Nano Developer Kit")) == "jetson-orin"
    assert board_target(board("jetson", "NVIDIA Jetson AGX Orin")) == "jetson-orin"
    assert board_target(board("jetson", "NVIDIA Jetson TX2")) == "jetson"
    assert board_target(board("raspberry-pi", "Raspberry Pi 5 Model B Rev 1.0")) == "rpi5"
    assert board_target(board("raspberry-pi", "Raspberry Pi 3 Model B")) == "pi"
    assert board_target(board("generic", "AMD EPYC")) is None


@pytest.mark.parametrize("target", ["jetson", "pi"])
def test_a_student_with_filter_bases_exports_to_every_format_with_its_bases(target):
    """Filter bases are full-resolution terms the export graphs write by hand (the ONNX rows and
    block graphs, INT8's block core, TensorRT's float graph, TFLite): each format must hold them,
    at the same parity bars, and the term must matter (the same student without it is far off)."""
    import torch

    from edgerestore.export.onnx import reference_uint8
    from edgerestore.runtime.backends import create_backend
    from tests.export_helpers import tiny_student

    checkpoint = tiny_checkpoint("bases", context=True, bases=1)
    result = exported(target, checkpoint=checkpoint)
    for row in result.rows:
        assert row.status == "ok", "%s %s: %s" % (target, row.format, row.note)
        assert row.parity_psnr >= BARS[row.precision]
    student = tiny_student(context=True, bases=1)
    frame = np.random.default_rng(1).integers(0, 256, (1,) + SIZE + (3,), dtype=np.uint8)
    with_bases = reference_uint8(student, torch.from_numpy(frame))[0].numpy()
    with torch.no_grad():
        student.bases.weights[0].weight.zero_()
    without = reference_uint8(student, torch.from_numpy(frame))[0].numpy()
    assert np.abs(with_bases.astype(int) - without).mean() > 2.0  # the term is not negligible
    if target == "pi":
        backend = create_backend("onnxruntime", threads=1)
        backend.load(str(result.out_dir / "model.onnx"))
        out = backend.infer(frame[0])
        assert np.abs(out.astype(int) - with_bases).max() <= 1


def test_basis_responses_are_quantized_as_far_as_parity_allows(monkeypatch, tmp_path):
    """The filter bases' response convolution: int8 weights (all 8 bits where no x86 kernel can
    saturate on them), else 8-bit uint8 ones (u8u8 kernels never saturate), else float, whichever
    first keeps the core's parity; each mode's graph is what it says, and the first two still run
    as QLinearConv after ONNX Runtime's optimizer."""
    import onnxruntime as ort

    from edgerestore.export import calibration, quantize
    from tests.export_helpers import tiny_student

    student = tiny_student(context=True, bases=1)
    frames = calibration.build(SIZE).frames[:2]
    seen = {}
    for floor, want in ((0.0, "int8 8-bit"), (99.0, "float")):
        monkeypatch.setattr(quantize, "RESPONSES_PARITY", floor)
        path = quantize.quantize_student(student, tmp_path / ("m-%s.onnx" % want), frames)
        meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["edgerestore.quantization"])
        assert meta["responses"] == want
        seen[want] = meta["core_parity_db"]
    assert seen["float"] >= seen["int8 8-bit"] - 0.5

    core, qcore = tmp_path / "core.onnx", tmp_path / "core-q.onnx"
    quantize._export_core(student, core, 13)
    feeds = quantize.calibration_feeds(student, quantize.calibration_crops(frames, student.stride))
    for mode, dtype in (("int8", np.int8), ("uint8", np.uint8), ("float", None)):
        quantize._quantize_core(core, qcore, feeds, "percentile", mode)
        model = onnx.load(str(qcore))
        conv = next(n for n in model.graph.node if n.op_type == "Conv" and "responses" in n.name)
        producers = {o: n for n in model.graph.node for o in n.output}
        weight = producers.get(conv.input[1])
        if dtype is None:
            assert weight is None  # a float initializer, not dequantized
            continue
        assert weight.op_type == "DequantizeLinear"
        stored = next(i for i in model.graph.initializer if i.name == weight.input[0])
        values = onnx.numpy_helper.to_array(stored)
        assert values.dtype == dtype
        assert int(values.max()) - int(values.min()) > 127  # the whole 8 bits, not reduce_range's 7
        assert quantize.core_parity(core, qcore, feeds) > 40.0
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / ("opt-%s.onnx" % mode))
        ort.InferenceSession(str(qcore), options, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
        assert "Conv" not in ops, (mode, ops)
    with pytest.raises(ValueError, match="responses mode"):
        quantize._quantize_core(core, qcore, feeds, "percentile", "int4")


def test_response_weights_keep_their_sums_and_cannot_saturate(tmp_path):
    """Each quantized response filter keeps its float filter's sum (a high-pass filter's DC gain:
    rounding each tap to its nearest step leaks brightness into the response), its zero taps stay
    zero, and 8-bit int8 weights are taken only where no pair of taps can saturate an int16 sum."""
    import torch
    from onnx import numpy_helper

    from edgerestore.export import calibration, quantize
    from tests.export_helpers import tiny_student

    assert quantize.pairs_unsaturable(np.array([[127, -20, -20, -19, 0, 0]]))
    assert not quantize.pairs_unsaturable(np.array([[127, 2, -20, 0]]))  # 255 * 129 > 32767
    assert not quantize.pairs_unsaturable(np.array([[-100, -40, 127]]))
    student = tiny_student(bases=1)
    with torch.no_grad():  # an uneven high-pass filter, as training leaves them
        filt = student.bases.filters[0].weight
        filt.add_(torch.linspace(-0.02, 0.03, filt.numel()).view_as(filt) * (filt != 0))
    frames = calibration.build(SIZE).frames[:2]
    core, qcore = tmp_path / "core.onnx", tmp_path / "core-q.onnx"
    quantize._export_core(student, core, 13)
    feeds = quantize.calibration_feeds(student, quantize.calibration_crops(frames, student.stride))
    floats = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(core)).graph.initializer}
    conv = quantize.response_convs(onnx.load(str(core)).graph)[0]
    weight = floats[conv.input[1]].reshape(len(floats[conv.input[1]]), -1)
    for mode in ("int8", "uint8"):
        made = quantize._quantize_core(core, qcore, feeds, "percentile", mode)
        assert made == {"int8": "int8 8-bit", "uint8": "uint8"}[mode]
        model = onnx.load(str(qcore))
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0].startswith(conv.input[1]))
        scale = np.broadcast_to(inits[dq.input[1]].reshape(-1), (len(weight),))
        steps = inits[dq.input[0]].astype(np.int64).reshape(len(weight), -1) - \
            np.broadcast_to(inits[dq.input[2]].astype(np.int64).reshape(-1), (len(weight),))[:, None]
        assert (steps[weight == 0] == 0).all()
        want = np.round(weight.sum(1) / scale)
        assert (steps.sum(1) == want).all(), mode
        assert np.abs(steps * scale[:, None] - weight).max() <= 1.5 * scale.max()  # moved by one step at most
    # two large positive taps: 8-bit int8 could saturate an AVX2 kernel, so the weights keep 7 bits
    with torch.no_grad():
        student.bases.filters[0].weight[:, :, 0, 0] = 0.7
    quantize._export_core(student, core, 13)
    assert quantize._quantize_core(core, qcore, feeds, "percentile", "int8") == "int8 7-bit"


@pytest.mark.parametrize("level,codec", [(True, False), (False, True), (True, True)])
def test_int8_condition_channels_pad_the_head_to_a_multiple_of_4(tmp_path, level, codec):
    """A student's noise level and codec strengths are uint8 channels of the INT8 graph's blocks,
    padded with zero-weight channels to a multiple of 4 input channels (ONNX Runtime's fast
    symmetric INT8 convolution needs it); the graph runs as QLinearConvs only, and the conditions
    still move its output."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from edgerestore.export import blocks, calibration, conditions, quantize
    from tests.export_helpers import tiny_student

    student = tiny_student(bases=1, level=level, codec=codec)
    path = quantize.quantize_student(student, tmp_path / "m.onnx", calibration.build(SIZE).frames[:2])
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert not [n for n in onnx.load(options.optimized_model_filepath).graph.node if n.op_type == "Conv"]
    s, conds = student.config.scale, conditions.of(student)
    head = numpy_helper.to_array(next(i for i in onnx.load(str(path)).graph.initializer
                                      if i.name == "head.weight_quantized"))
    used = 3 * s * s + sum(c.width for c in conds)
    assert head.shape[1] == blocks.head_channels(s, conds) and head.shape[1] % 4 == 0 and head.shape[1] > used
    assert (head[:, used:] == 0).all() and (head[:, 3 * s * s:used] != 0).any()
    frame = np.random.default_rng(0).integers(0, 256, (1, 8 * s, 12 * s, 3), dtype=np.uint8)
    outs = []
    for value in (0.0, 1.5):
        feed = {"frame": frame}
        feed.update({c.name: np.full(c.width, value, np.float32) for c in conds})
        outs.append(session.run(None, feed)[0])
    assert np.abs(outs[0].astype(int) - outs[1]).mean() > 0.5


def test_int8_basis_responses_from_the_blocks_or_the_frame(tmp_path):
    """The filter bases' responses of an INT8 graph come from the uint8 blocks (a 3x3 convolution
    with a multiple of 4 input channels: ONNX Runtime's fast symmetric kernel) or from the planar
    frame (the Raspberry Pi targets); the same filter either way, so the outputs agree."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from edgerestore.export import calibration, quantize, targets
    from tests.export_helpers import tiny_student

    assert targets.TARGETS["cpu"].int8_responses == "blocks" and targets.TARGETS["rpi4"].int8_responses == "frame"
    student = tiny_student(bases=1, level=True)
    frames = calibration.build(SIZE).frames[:2]
    frame = np.random.default_rng(1).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    outs = {}
    for source in quantize.SOURCES:
        path = quantize.quantize_student(student, tmp_path / ("%s.onnx" % source), frames, source=source)
        model = onnx.load(str(path))
        meta = json.loads({p.key: p.value for p in model.metadata_props}["edgerestore.quantization"])
        assert meta["responses_from"] == source
        weight = numpy_helper.to_array(next(i for i in model.graph.initializer
                                            if i.name == "bases.responses.0.weight_quantized"))
        assert weight.shape[1:] == ((52, 3, 3) if source == "blocks" else (3, 6, 6))  # 48 + level, padded
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs[source] = session.run(None, {"frame": frame, "noise_level": np.array([0.5], np.float32)})[0].astype(int)
    assert np.abs(outs["blocks"] - outs["frame"]).mean() < 0.2
    with pytest.raises(ValueError, match="response source"):
        quantize.BlockCore(student, "rows")


def test_simulated_tensorrt_int8_quantizes_the_weights_of_int8_layers_only(tmp_path):
    """TensorRT runs a layer in INT8 only when the tensors it consumes and produces have scales; the
    others (the layers that read pixels, and the last one) keep float weights in the simulation too."""
    from onnx import TensorProto, helper, numpy_helper

    from edgerestore.export.verify import simulate_int8

    rng = np.random.default_rng(0)
    weights = {name: rng.normal(size=(4, 4, 1, 1)).astype(np.float32) for name in ("wa", "wb", "wc")}
    nodes = [helper.make_node("Conv", ["x", "wa"], ["y"], name="a"), helper.make_node("Conv", ["y", "wb"], ["z"], name="b"),
             helper.make_node("Conv", ["z", "wc"], ["out"], name="c")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [numpy_helper.from_array(w, n) for n, w in weights.items()])
    src = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    sim = onnx.load(str(simulate_int8(src, {"y": 0.1, "z": 0.1}, tmp_path / "sim.onnx")))
    stored = {i.name: numpy_helper.to_array(i) for i in sim.graph.initializer}
    assert np.array_equal(stored["wa"], weights["wa"]) and np.array_equal(stored["wc"], weights["wc"])
    step = np.abs(weights["wb"]).reshape(4, -1).max(axis=1).reshape(4, 1, 1, 1) / 127.0
    assert not np.array_equal(stored["wb"], weights["wb"])
    assert np.allclose(stored["wb"] / step, np.round(stored["wb"] / step), atol=1e-3)
    assert {n.op_type for n in sim.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
