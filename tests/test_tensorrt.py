"""TensorRT, up to its API: calibration cache format, entropy calibration, build plans, engine cache,
the calibrator, the builder settings and the backend's buffers and uint8 <-> float adapter.

No machine here has TensorRT or a CUDA GPU, so these tests run our code against a stand-in shaped
like TensorRT's and pycuda's Python APIs (tests/trt_standin.py says exactly what it models). The
real calls are the few in ``edgerestore.runtime.backends.tensorrt_engine.build_engine`` and
``edgerestore.runtime.backends.tensorrt``; ``test_real_tensorrt_builds_and_runs`` checks them on a
board with TensorRT (marked ``hardware``).
"""

import os

import numpy as np
import pytest
import torch

from edgerestore.export import tensorrt as trt_export
from edgerestore.export.onnx import reference_uint8
from edgerestore.models.checkpoint import load_student
from edgerestore.runtime.backends import tensorrt_engine as trt_engine
from edgerestore.runtime.backends.tensorrt import TensorRTBackend
from tests.export_helpers import SIZE, copy_bundle, exported, tiny_checkpoint
from tests.trt_standin import cache_header, header_of, make_pycuda, make_tensorrt

# --- the calibration cache format ----------------------------------------------------------------


def test_cache_format_round_trip_and_known_values():
    assert trt_engine.version_number("8.2.1.8") == 8201
    assert trt_engine.version_number("8.5.2") == 8502
    assert trt_engine.version_number("10.3.0.30") == 100300
    assert trt_engine.scale_to_hex(1.0) == "3f800000"
    assert trt_engine.scale_to_hex(1 / 127.0) == "3c010204"  # what TensorRT writes for amax 1.0
    data = trt_engine.format_cache({"frame": 2.0, "/head/Conv_output_0": 0.0125}, "8.2.1")
    lines = data.decode("ascii").splitlines()
    assert lines == ["TRT-8201-EntropyCalibration2", "/head/Conv_output_0: 3c4ccccd", "frame: 40000000"]
    header, scales = trt_engine.parse_cache(data)
    assert header == "TRT-8201-EntropyCalibration2"
    assert scales["frame"] == 2.0 and abs(scales["/head/Conv_output_0"] - 0.0125) < 1e-9
    retargeted = trt_engine.retarget_cache(data, "10.3.0")
    assert cache_header(retargeted) == "TRT-100300-EntropyCalibration2"
    assert trt_engine.parse_cache(retargeted)[1] == scales
    for bad in (b"", b"hello\nframe: 3f800000\n", b"TRT-8201-EntropyCalibration2\nframe 3f800000\n",
                b"TRT-8201-EntropyCalibration2\nframe: 3f80\n"):
        with pytest.raises(ValueError):
            trt_engine.parse_cache(bad)


def test_entropy_threshold_is_not_fooled_by_the_zeros_after_a_relu():
    rng = np.random.default_rng(1)
    relu = np.maximum(rng.normal(0, 1, 200000), 0)  # half exact zeros
    hist, _ = np.histogram(relu, bins=2048, range=(0, relu.max()))
    threshold = trt_export.entropy_threshold(hist, relu.max() / 2048)
    assert threshold > 0.5 * relu.max()  # without ignoring the zero bin it keeps ~6% of the range


def test_entropy_threshold_clips_outliers_and_keeps_small_ranges():
    rng = np.random.default_rng(0)
    values = np.abs(np.concatenate([rng.normal(0, 1, 100000), [40.0, 45.0, 50.0]]))
    hist, _ = np.histogram(values, bins=2048, range=(0, values.max()))
    threshold = trt_export.entropy_threshold(hist, values.max() / 2048)
    assert 2.5 < threshold < 20  # clips the three far outliers, keeps the Gaussian's bulk
    few = np.zeros(2048)
    few[:50] = 1  # every magnitude fits in fewer bins than INT8 has levels: no clipping
    assert trt_export.entropy_threshold(few, 0.1) == pytest.approx(5.0)
    assert trt_export.entropy_threshold(np.zeros(2048), 0.1) == 0.0


def test_cache_from_real_frames_covers_the_network_but_not_the_frame_level_residual():
    import onnx

    result = exported("jetson-orin")
    path = result.out_dir / "model.trt.onnx"
    header, scales = trt_engine.parse_cache((result.out_dir / "calibration.cache").read_bytes())
    assert header == "TRT-100300-EntropyCalibration2"  # the target's TensorRT (10.3)
    model = onnx.load(str(path))
    convs = [n.output[0] for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert set(convs) <= set(scales) and "frame" not in scales  # pixels stay FP16 in the engine
    last = model.graph.node[-1]
    assert model.graph.output[0].name not in scales and last.output[0] not in scales
    frame_add = [n for n in model.graph.node if n.op_type == "Add" and model.graph.node[0].output[0] in n.input]
    assert frame_add and frame_add[0].output[0] not in scales
    assert all(0 < s < 10 for s in scales.values())
    assert not [n for n in scales if n.startswith("/Reshape")]


# --- plans and the engine cache ------------------------------------------------------------------


def test_engine_key_changes_with_everything_that_makes_an_engine_unportable():
    base = dict(model_sha256="ab" * 32, trt_version="8.2.1", gpu_name="NVIDIA Tegra X1", precision="fp16",
                shape=(1, 720, 1280, 3))
    key = trt_engine.engine_key(**base)
    assert key == "abababababababab_trt8.2.1_NVIDIA-Tegra-X1_fp16_1x720x1280x3.engine"
    for field, other in (("model_sha256", "cd" * 32), ("trt_version", "8.2.3"), ("gpu_name", "Orin"),
                         ("precision", "int8"), ("shape", (1, 1080, 1920, 3))):
        assert trt_engine.engine_key(**dict(base, **{field: other})) != key, field


def test_plans_per_board(tmp_path):
    nano = exported("jetson-nano")
    onnx_path = nano.out_dir / "model.trt.onnx"
    plan = trt_engine.plan_build(onnx_path, (1,) + SIZE + (3,), "int8", "8.2.1", "NVIDIA Tegra X1", False,
                                 workspace_mb=512, calibration_cache=None, cache_dir=str(tmp_path))
    assert plan.precision == "fp16" and plan.requested == "int8" and plan.flags() == ["FP16"]
    assert len(plan.warnings) == 1 and "sm_53" in plan.warnings[0]
    assert plan.engine_path.startswith(str(tmp_path)) and "_fp16_" in plan.engine_path
    orin = exported("jetson-orin")
    plan = trt_engine.plan_build(orin.out_dir / "model.trt.onnx", (1,) + SIZE + (3,), "int8", "10.3.0", "Orin",
                                 True, calibration_cache=str(orin.out_dir / "calibration.cache"),
                                 cache_dir=str(tmp_path))
    assert plan.precision == "int8" and plan.flags() == ["FP16", "INT8"] and not plan.warnings
    assert any("IInt8EntropyCalibrator2" in line for line in plan.describe())


# --- building with the stand-in --------------------------------------------------------------------


def _backend(tmp_path, version="8.2.1", fast_int8=False, gpu="NVIDIA Tegra X1", precision=None):
    trt = make_tensorrt(version, fast_int8=fast_int8)
    cuda = make_pycuda(gpu_name=gpu, trt=trt)
    messages = []
    backend = TensorRTBackend(precision=precision, trt=trt, cuda=cuda, cache_dir=str(tmp_path / "cache"),
                              log=messages.append)
    return backend, trt, cuda, messages


@pytest.mark.parametrize("version", ["8.2.1", "10.3.0"])
def test_backend_builds_caches_and_runs_the_engine(tmp_path, version):
    """Nano-style FP16 build, engine + timing cache written, then the uint8 frames round-trip the float engine."""
    target = "jetson-nano" if version.startswith("8") else "jetson-orin"
    bundle = copy_bundle(exported(target), tmp_path / "bundle")
    backend, trt, cuda, messages = _backend(tmp_path, version, fast_int8=version.startswith("10"),
                                            precision="fp16")
    backend.load(str(bundle / "model.trt.onnx"))
    assert trt.calls["builds"] == 1 and any("building the TensorRT FP16 engine" in m for m in messages)
    plan = backend.plan
    header = header_of(plan.engine_path)
    assert header["flags"] == ["FP16"] and header["calibration"] is None
    expected_workspace = 512 << 20 if target == "jetson-nano" else 2048 << 20
    if version.startswith("8"):
        assert header["workspace"] == expected_workspace  # config.max_workspace_size (8.2 has no memory pools)
    else:
        assert header["workspace"] == ["WORKSPACE", expected_workspace]  # set_memory_pool_limit
    assert os.path.isfile(plan.timing_cache_path)
    student, _ = load_student(str(tiny_checkpoint()))
    rng = np.random.default_rng(0)
    for shape in (SIZE, (SIZE[0] - 4, SIZE[1] - 12)):  # full size, and a smaller frame (padded)
        frame = rng.integers(0, 256, shape + (3,)).astype(np.uint8)
        out = backend.infer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
        if shape == SIZE:
            expected = reference_uint8(student, torch.from_numpy(frame)[None]).numpy()[0]
            assert np.abs(out.astype(int) - expected).max() <= 1
    assert cuda.copies["htod"] == cuda.copies["dtoh"] == 2
    # A second load finds the engine in the cache: no build.
    again, trt2, _, _ = _backend(tmp_path, version, fast_int8=version.startswith("10"), precision="fp16")
    again.load(str(bundle / "model.trt.onnx"))
    assert trt2.calls["builds"] == 0 and again.plan.engine_path == plan.engine_path


def test_int8_calibrator_serves_the_bundles_cache_under_the_local_header(tmp_path):
    bundle = copy_bundle(exported("jetson-orin"), tmp_path / "bundle")
    backend, trt, _, _ = _backend(tmp_path, "10.3.0", fast_int8=True, gpu="Orin")
    backend.load(str(bundle / "model.trt.onnx"))
    header = header_of(backend.plan.engine_path)
    assert header["flags"] == ["FP16", "INT8"] and header["calibration"] == "cache"
    assert trt.calls["read_cache"] == 1 and trt.calls["get_batch"] == 0  # TensorRT took the cache


def test_calibrator_feeds_batches_when_tensorrt_wants_to_recalibrate(tmp_path):
    """A cache TensorRT rejects (here: a corrupt header) makes it pull batches: the package photos, right shape."""
    trt = make_tensorrt("10.3.0", fast_int8=True)
    cuda = make_pycuda(trt=trt)
    frames = trt_engine.package_calibration_frames((1,) + SIZE + (3,), limit=3)
    assert len(frames) == 3 and all(f.shape == SIZE + (3,) and f.dtype == np.float32 for f in frames)
    written = tmp_path / "new.cache"
    calibrator = trt_engine.make_calibrator(trt, cuda, None, frames, write_path=str(written))
    builder = trt.Builder(trt.Logger())
    assert builder._calibrate(calibrator, b"") == "3 batches"
    assert trt.calls["get_batch"] == 4 and written.read_bytes().startswith(b"TRT-100300-EntropyCalibration2")
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2) and calibrator.get_batch_size() == 1


def test_int8_on_a_gpu_without_it_builds_fp16_with_one_warning(tmp_path):
    bundle = copy_bundle(exported("jetson-orin"), tmp_path / "bundle")
    backend, trt, _, messages = _backend(tmp_path, "8.5.2", fast_int8=False, precision="int8")
    backend.load(str(bundle / "model.trt.onnx"))
    warnings = [m for m in messages if m.startswith("warning")]
    assert len(warnings) == 1 and "FP16" in warnings[0]
    assert header_of(backend.plan.engine_path)["flags"] == ["FP16"] and trt.calls["read_cache"] == 0


def test_parser_errors_are_reported(tmp_path):
    """TensorRT 8.2 cannot parse the Orin target's opset 17 graph: the error says so."""
    bundle = copy_bundle(exported("jetson-orin"), tmp_path / "bundle")
    backend, _, _, _ = _backend(tmp_path, "8.2.1", precision="fp16")
    with pytest.raises(RuntimeError) as info:
        backend.load(str(bundle / "model.trt.onnx"))
    assert "opset 17" in str(info.value)


def test_a_loose_onnx_or_the_wrong_artifact_is_refused(tmp_path):
    from edgerestore.errors import BackendUnavailableError, BundleError

    bundle = copy_bundle(exported("jetson-nano"), tmp_path / "bundle")
    loose = tmp_path / "loose.trt.onnx"
    loose.write_bytes((bundle / "model.trt.onnx").read_bytes())
    backend, _, _, _ = _backend(tmp_path)
    with pytest.raises(BundleError) as info:
        backend.load(str(loose))
    assert "manifest" in str(info.value)
    with pytest.raises(BackendUnavailableError) as info:
        backend.load(str(bundle / "model.onnx"))  # the uint8 ONNX Runtime artifact
    assert "float32-nhwc-rgb" in str(info.value)


def test_probe_says_how_to_get_tensorrt():
    reason = TensorRTBackend.probe()
    if reason is not None:  # this machine
        assert "TensorRT" in reason or "pycuda" in reason or "CUDA" in reason


# --- the build-engine command -----------------------------------------------------------------------


def test_build_engine_check_prints_the_plan_without_tensorrt(cli, tmp_path):
    nano = copy_bundle(exported("jetson-nano"), tmp_path / "nano")
    result = cli("build-engine", nano, "--check", "--precision", "int8", env={"EDGERESTORE_CACHE": str(tmp_path)})
    if TensorRTBackend.probe() is None:
        pytest.skip("TensorRT is installed: the check shows this machine's plan")
    assert "plan for a jetson-nano" in result.stdout
    assert "precision  FP16 (builder flags: FP16)" in result.stdout
    assert "TensorRT   8.2 on 128-core Maxwell" in result.stdout
    assert "1x%dx%dx3" % SIZE in result.stdout and "would build" in result.stdout
    assert result.stderr.count("warning:") == 1 and "sm_53" in result.stderr
    orin = copy_bundle(exported("jetson-orin"), tmp_path / "orin")
    result = cli("build-engine", orin, "--check", env={"EDGERESTORE_CACHE": str(tmp_path)})
    assert "precision  INT8 (builder flags: FP16, INT8)" in result.stdout
    assert "IInt8EntropyCalibrator2 reading" in result.stdout and "TRT 100300" in result.stdout


def test_build_engine_without_tensorrt_is_one_line(cli, tmp_path):
    if TensorRTBackend.probe() is None:
        pytest.skip("TensorRT is installed here")
    nano = copy_bundle(exported("jetson-nano"), tmp_path / "nano")
    result = cli("build-engine", nano, check=False)
    assert result.returncode == 4 and result.stderr.count("\n") == 1 and "TensorRT is not installed" in result.stderr
    cpu = copy_bundle(exported("cpu"), tmp_path / "cpu")
    result = cli("build-engine", cpu, check=False)
    assert result.returncode == 5 and "no TensorRT artifact" in result.stderr


@pytest.mark.hardware
@pytest.mark.skipif(TensorRTBackend.probe() is not None, reason="needs TensorRT, pycuda and a CUDA GPU")
def test_real_tensorrt_builds_and_runs(tmp_path):
    bundle = copy_bundle(exported("jetson-nano"), tmp_path / "bundle")
    backend = TensorRTBackend(cache_dir=str(tmp_path / "cache")).load(str(bundle / "model.trt.onnx"))
    student, _ = load_student(str(tiny_checkpoint()))
    frame = np.random.default_rng(0).integers(0, 256, SIZE + (3,)).astype(np.uint8)
    expected = reference_uint8(student, torch.from_numpy(frame)[None]).numpy()[0]
    assert np.abs(backend.infer(frame).astype(int) - expected).max() <= 2  # FP16
