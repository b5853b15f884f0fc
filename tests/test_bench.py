"""edgerestore bench on real tiny models (ONNX Runtime FP32 + INT8), real images and the OpenCV baselines."""

import copy
import json
import math
import os

import numpy as np
import pytest

from edgerestore.benchmarks import bench, evalset, schema
from edgerestore.benchmarks.baselines import BASELINES, create_baseline
from edgerestore.benchmarks.teacher import teacher_candidates
from edgerestore.runtime import quality as metrics
from edgerestore.runtime.backends.base import Backend
from edgerestore.weights import shipped_presets

SIZES = [(64, 48), (66, 50)]  # the second is not a multiple of the stride: padded and cropped


@pytest.fixture(scope="module")
def models(tiny_models):
    return tiny_models


@pytest.fixture(scope="module")
def result(models, small_evalset):
    candidates = (bench.baseline_candidates(sorted(BASELINES))
                  + bench.discover([models["fp32"], models["int8"], models["corrupt"]])
                  + teacher_candidates(models["checkpoint"], frames=2)
                  + teacher_candidates("/nonexistent/restormer.pth"))
    return bench.run_bench(candidates, sizes=SIZES, frames=8, warmup=1, threads=1, evalset=small_evalset,
                           label="test board", command="pytest")


def _rows(result, config):
    return [r for r in result["rows"] if r["id"].rsplit("/", 1)[0] == config]


def test_result_is_schema_valid_with_both_validators(result):
    schema.validate(result, use_jsonschema=False)
    pytest.importorskip("jsonschema")
    schema.validate(result, use_jsonschema=True)
    json.dumps(result, allow_nan=False)


def test_every_candidate_has_a_row_per_size(result):
    configs = {}
    for row in result["rows"]:
        configs.setdefault(row["id"].rsplit("/", 1)[0], []).append((row["width"], row["height"]))
    expected = {"none/numpy/-", "unsharp/opencv/-", "bilateral/opencv/-", "nlmeans/opencv/-",
                "tiny/onnxruntime/fp32", "tiny/onnxruntime/int8", "corrupt/onnxruntime/fp32",
                "teacher/torch/fp32", "teacher/torch/fp32#2"}
    assert set(configs) == expected
    assert all(sizes == SIZES for sizes in configs.values())
    assert result["settings"]["sizes"] == [list(s) for s in SIZES]
    assert result["label"] == "test board" and result["board"]["cpu"]["model"]


def test_a_backend_that_fails_to_load_gives_failed_rows_and_the_others_complete(result):
    failed = _rows(result, "corrupt/onnxruntime/fp32")
    assert [r["status"] for r in failed] == ["failed", "failed"]
    assert all("cannot load" in r["error"] for r in failed)
    assert all(r["fps"] is None and r["latency_ms"] is None for r in failed)
    missing_teacher = _rows(result, "teacher/torch/fp32#2")
    assert all(r["status"] == "failed" and "do not exist" in r["error"] for r in missing_teacher)
    ok = [r for r in result["rows"] if r["status"] == "ok"]
    assert len(ok) == 2 * (9 - 2)  # every size of all but the corrupt model and the missing teacher


def test_speed_block(result):
    for row in _rows(result, "tiny/onnxruntime/int8") + _rows(result, "nlmeans/opencv/-"):
        assert row["frames"] == 8 and row["warmup"] == 1 and not row["capped"]
        lat = row["latency_ms"]
        assert len(lat["samples"]) == 8
        assert lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert row["fps"] == pytest.approx(1000.0 / lat["p50"])
        assert row["stage_ms"]["infer"] > 0 and row["stage_ms"]["infer"] <= lat["p50"] * 1.5
        assert row["cpu_percent"] > 0 and row["rss_mb"] > 10 and row["peak_rss_mb"] >= row["rss_mb"]
        assert set(row["thermal"]) == {"before", "after"}
    fp32 = _rows(result, "tiny/onnxruntime/fp32")[0]
    assert fp32["macs_per_pixel"] > 0  # counted from the config stored in the ONNX file
    assert fp32["gmacs_per_s"] == pytest.approx(fp32["macs_per_pixel"] * 64 * 48 * fp32["fps"] / 1e9)
    assert fp32["size_mb"] > 0 and len(fp32["sha256"]) == 64
    teacher = _rows(result, "teacher/torch/fp32")[0]
    assert teacher["status"] == "ok" and teacher["frames"] == 2 and teacher["kind"] == "teacher"


def test_quality_against_ground_truth_is_measured(result, small_evalset):
    _, pairs = small_evalset
    none = _rows(result, "none/numpy/-")[0]["quality"]
    for subset in ("mild", "gopro"):
        chosen = [p for p in pairs if p.subset == subset]
        expected = np.mean([metrics.psnr(p.degraded, p.clean) for p in chosen])
        got = none["vs_ground_truth"][subset]
        assert got["psnr"] == pytest.approx(expected) and got["images"] == len(chosen)
    assert none["vs_reference"] is None
    unsharp = _rows(result, "unsharp/opencv/-")[0]["quality"]["vs_ground_truth"]["mild"]
    assert unsharp["psnr"] != pytest.approx(none["vs_ground_truth"]["mild"]["psnr"])
    # The same quality block on every size of one configuration.
    a, b = _rows(result, "tiny/onnxruntime/fp32")
    assert a["quality"] == b["quality"]


def test_quantised_rows_are_compared_with_the_fp32_reference(result, models, small_evalset):
    fp32 = _rows(result, "tiny/onnxruntime/fp32")[0]["quality"]
    int8 = _rows(result, "tiny/onnxruntime/int8")[0]
    assert fp32["vs_reference"] is None
    vs = int8["quality"]["vs_reference"]
    assert vs["reference"] == "tiny/onnxruntime/fp32"
    assert 25.0 < vs["psnr"] < bench.IDENTICAL_PSNR
    # Recompute by hand with the real backends: the mean PSNR of INT8 outputs against FP32 outputs.
    from edgerestore.runtime.backends import create_backend

    _, pairs = small_evalset
    ref = create_backend("onnxruntime", threads=1).load(str(models["fp32"]))
    quant = create_backend("onnxruntime", threads=1).load(str(models["int8"]))
    by_hand = np.mean([metrics.psnr(quant.infer(p.degraded), ref.infer(p.degraded)) for p in pairs])
    assert vs["psnr"] == pytest.approx(by_hand) and vs["images"] == len(pairs)
    assert int8["status"] == "ok"  # above the 30 dB default bar


def test_parity_bar_marks_rows(models, small_evalset):
    candidates = bench.discover([models["fp32"], models["int8"]])
    res = bench.run_bench(candidates, sizes=[(32, 32)], frames=2, warmup=0, evalset=small_evalset, parity_db=200.0)
    status = {r["id"]: r["status"] for r in res["rows"]}
    assert status == {"tiny/onnxruntime/fp32/32x32": "ok", "tiny/onnxruntime/int8/32x32": "exported-but-failed-parity"}
    assert "parity bar" in [r for r in res["rows"] if r["precision"] == "int8"][0]["error"]


def test_rows_are_capped_by_max_seconds(models):
    res = bench.run_bench(bench.baseline_candidates(["nlmeans"]), sizes=[(96, 64)], frames=10000, warmup=0,
                          max_seconds=0.01)
    row = res["rows"][0]
    assert row["capped"] and bench.MIN_FRAMES <= row["frames"] < 10000
    assert res["settings"]["evalset"] is None and row["quality"] is None


def test_time_frames_counts_and_stages():
    runner = create_baseline("bilateral", threads=1)
    frames = bench.timing_frames([], 40, 30)
    assert frames[0].shape == (30, 40, 3) and frames[0].std() > 10  # a textured synthetic frame
    timing = bench.time_frames(runner, frames, 5, warmup=2)
    assert len(timing["latencies"]) == 5 and runner.calls == 7
    assert all(i <= t + 1e-9 for i, t in zip(timing["infer"], timing["latencies"]))


def test_baselines_do_what_they_say(small_evalset):
    _, pairs = small_evalset
    image = pairs[0].degraded
    assert create_baseline("none").infer(image) is image or np.array_equal(create_baseline("none").infer(image), image)
    for name in ("unsharp", "bilateral", "nlmeans"):
        out = create_baseline(name).infer(image)
        assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    # unsharp adds high frequencies, the denoisers remove them
    lap = [np.abs(np.diff(create_baseline(n).infer(image).astype(float), axis=1)).mean()
           for n in ("none", "unsharp", "bilateral")]
    assert lap[1] > lap[0] > lap[2]


def test_names_and_precisions_from_files():
    assert bench.precision_from_name("nano_int8.onnx") == "int8"
    assert bench.precision_from_name("small-fp16.tflite") == "fp16"
    assert bench.precision_from_name("nano.onnx") is None
    assert bench.model_name_from_file("/x/nano_int8.onnx") == "nano"
    assert bench.model_name_from_file("small_fp16.tflite") == "small"


def test_folder_of_files_and_a_file_no_backend_runs(tmp_path, models):
    import shutil

    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(models["fp32"], folder / "model.onnx")
    shutil.copy(models["fp32"], folder / "model_int8.tflite")  # not a TFLite file: no backend can run it
    cands = bench.discover([str(folder)])
    assert sorted(c.label for c in cands) == ["model/tflite/int8", "tiny/onnxruntime/fp32"]
    res = bench.run_bench(cands, sizes=[(32, 32)], frames=2, warmup=0)
    rows = {r["id"]: r for r in res["rows"]}
    assert rows["tiny/onnxruntime/fp32/32x32"]["status"] == "ok"
    bad = rows["model/tflite/int8/32x32"]
    assert bad["status"] == "failed" and bad["error"]  # no backend registered, or TFLite refuses the file


def test_fixed_size_artifacts_are_timed_at_their_own_size_only(models):
    entry = {"preset": "tiny", "fixed_size": (64, 48)}
    cands = bench.artifact_candidates(models["fp32"], entry=entry)
    cands += bench.artifact_candidates(models["fp32"], entry={"preset": "tiny", "fixed_size": (32, 32)})
    res = bench.run_bench(cands, sizes=[(64, 48), (96, 64)], frames=2, warmup=0)
    # One label for both files (their sizes differ), a row only where a file fits, a note for the other.
    assert [r["id"] for r in res["rows"]] == ["tiny/onnxruntime/fp32/64x48"]
    assert any("built for 32x32 only" in n for n in res["notes"])


def _write_bundle(folder, models, artifacts):
    import hashlib
    import shutil

    folder.mkdir()
    files = {}
    for art in artifacts:
        source = models["int8"] if art["precision"] == "int8" else models["fp32"]
        shutil.copy(source, folder / art["file"])
        files[art["file"]] = hashlib.sha256((folder / art["file"]).read_bytes()).hexdigest()
    manifest = {"schema": 1, "target": "laptop", "model": {"preset": "nano"}, "artifacts": artifacts, "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_bundle_rows_follow_the_manifest(tmp_path, models):
    arts = [
        {"format": "onnx", "backend": "onnxruntime", "precision": "fp32", "file": "model.onnx", "fixed_size": False,
         "input_size": None},
        {"format": "onnx-int8", "backend": "onnxruntime", "precision": "int8", "file": "model-int8.onnx",
         "fixed_size": True, "input_size": [48, 64]},
    ]
    bundle = _write_bundle(tmp_path / "bundle", models, arts)
    res = bench.run_bench(bench.discover([str(bundle)]), sizes=[(64, 48), (32, 32)], frames=2, warmup=0)
    assert sorted(r["id"] for r in res["rows"]) == [
        "nano/onnxruntime/fp32/32x32", "nano/onnxruntime/fp32/64x48", "nano/onnxruntime/int8/64x48"]
    # A file changed after export: the bundle is refused by name, as the runtime refuses it.
    (bundle / "model-int8.onnx").write_bytes(b"tampered")
    res = bench.run_bench(bench.discover([str(bundle)]), sizes=[(32, 32)], frames=2, warmup=0)
    assert [(r["backend"], r["status"]) for r in res["rows"]] == [("bundle", "failed")]
    assert "model-int8.onnx" in res["rows"][0]["error"]


def test_discover_errors(tmp_path):
    from edgerestore.errors import InputNotFoundError, UnknownNameError

    with pytest.raises(InputNotFoundError):
        bench.discover([str(tmp_path / "missing.onnx")])
    with pytest.raises(UnknownNameError):
        bench.discover(["no-such-preset"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError):
        bench.discover([str(tmp_path / "empty")])
    with pytest.raises(UnknownNameError):
        bench.baseline_candidates(["sharpen-harder"])


def test_schema_rejects_broken_results(result):
    broken = []
    r = copy.deepcopy(result)
    del r["rows"][0]["status"]
    broken.append(r)
    r = copy.deepcopy(result)
    r["rows"][0]["status"] = "great"
    broken.append(r)
    r = copy.deepcopy(result)
    r["rows"][1]["fps"] = "fast"
    broken.append(r)
    r = copy.deepcopy(result)
    r["board"]["kind"] = "mainframe"
    broken.append(r)
    r = copy.deepcopy(result)
    r["surprise"] = 1
    broken.append(r)
    r = copy.deepcopy(result)
    r["rows"][0]["width"] = 0
    broken.append(r)
    has_jsonschema = True
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        has_jsonschema = False
    for doc in broken:
        with pytest.raises(schema.BenchResultError):
            schema.validate(doc, use_jsonschema=False)
        if has_jsonschema:
            with pytest.raises(schema.BenchResultError):
                schema.validate(doc, use_jsonschema=True)
    r = copy.deepcopy(result)
    r["rows"][1]["fps"] = math.nan
    with pytest.raises(schema.BenchResultError, match="finite"):
        schema.validate(r, use_jsonschema=False)


def test_write_result_is_atomic_and_valid(result, tmp_path):
    path = bench.write_result(result, tmp_path / "sub" / "r.json")
    assert json.loads(path.read_text())["rows"] == result["rows"]
    assert not list((tmp_path / "sub").glob("*.part"))
    name = bench.default_result_path(result, str(tmp_path))
    assert "bench-test-board-" in name and name.endswith(".json")


def test_cli_bench_end_to_end(cli, models, small_evalset, tmp_path):
    out = tmp_path / "run.json"
    res = cli("bench", models["fp32"], models["int8"], models["corrupt"], "--sizes", "64x48,32x32", "--frames", "4",
              "--warmup", "1", "--threads", "1", "--baselines", "none,unsharp", "--evalset", small_evalset[0],
              "--label", "cli board", "--out", out, "-q")
    data = json.loads(out.read_text())
    schema.validate(data, use_jsonschema=False)
    assert len(data["rows"]) == 5 * 2
    assert data["command"].startswith("edgerestore bench ") and "--frames 4" in data["command"]
    assert "| tiny | onnxruntime | int8 | ✅ ok" in res.stdout
    assert "| corrupt | onnxruntime | fp32 | ❌ failed" in res.stdout
    assert "2 failed" in res.stdout


def test_cli_bench_bad_input(cli, tmp_path):
    res = cli("bench", tmp_path / "missing.onnx", "--no-quality", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error:") and len(res.stderr.strip().splitlines()) == 1
    res = cli("bench", "--sizes", "big", "--no-quality", check=False)
    assert res.returncode != 0 and "--sizes" in res.stderr
    res = cli("bench", "--baselines", "magic", "--no-quality", check=False)
    assert res.returncode == 2 and "unknown baseline 'magic'" in res.stderr


def test_cli_print_schema_and_make_evalset(cli, tmp_path, data_dir):
    res = cli("bench", "--print-schema")
    assert json.loads(res.stdout)["title"] == "edgerestore bench result"
    res = cli("bench", "--make-evalset", tmp_path / "ev", env={"EDGERESTORE_SHARED": str(data_dir.parent)})
    pairs = evalset.load_evalset(str(tmp_path / "ev"))
    assert {p.subset for p in pairs} == {"mild", "gopro"}
    assert len([p for p in pairs if p.subset == "mild"]) == 8
    manifest = evalset.read_manifest(str(tmp_path / "ev"))
    assert manifest["subsets"]["mild"]["images"][0]["licence"]


def test_student_speed_script(tmp_path):
    """benchmarks/student_speed.py (issue #2's speed table) runs end to end at a tiny size."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "speed.json"
    res = subprocess.run([sys.executable, str(root / "benchmarks" / "student_speed.py"), "--presets", "pico,nano",
                          "--sizes", "64x48", "--frames", "3", "--warmup", "1", "--random", "--json", str(out)],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, EDGERESTORE_CACHE=str(tmp_path / "cache")))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["preset"], r["weights"], r["frames"]) for r in rows] == [("pico", "random-init", 3), ("nano", "random-init", 3)]
    assert rows[0]["macs_per_pixel"] < rows[1]["macs_per_pixel"]
    assert all(r["fps"] > 0 and r["gmacs_per_s"] > 0 for r in rows)
    assert "| pico | random-init |" in res.stdout


class NoGpuBackend(Backend):
    """Stand-in shaped like a GPU backend on a machine without the GPU: probe() gives the reason."""

    name = "nogpu"

    @classmethod
    def probe(cls):
        return "no CUDA device here — this backend needs a Jetson"


def _precision_backend_class():
    from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend

    class BuildsPrecisions(OnnxRuntimeBackend):
        """Stand-in shaped like TensorRT: one file, precisions chosen at load (runs ONNX Runtime)."""

        name = "builds"
        precisions = ("fp16", "int8")

        def load(self, model_path, precision=None, **options):
            self.built_precision = precision
            return super(BuildsPrecisions, self).load(model_path)

        def info(self):
            info = super(BuildsPrecisions, self).info()
            info["precision"] = self.built_precision
            return info

    return BuildsPrecisions


BuildsPrecisions = _precision_backend_class()


def test_unavailable_backends_are_noted_unless_asked_for(models, monkeypatch):
    from edgerestore.runtime import artifacts
    from edgerestore.runtime import backends as registry

    monkeypatch.setitem(registry.REGISTRY, "nogpu", "tests.test_bench:NoGpuBackend")
    monkeypatch.setitem(artifacts.FILE_TYPES, ".onnx", artifacts.FILE_TYPES[".onnx"]._replace(
        backends=("onnxruntime", "nogpu")))
    res = bench.run_bench(bench.discover([models["fp32"]]), sizes=[(32, 32)], frames=2, warmup=0)
    assert [r["id"] for r in res["rows"]] == ["tiny/onnxruntime/fp32/32x32"]
    assert any("nogpu" in n and "no CUDA device" in n for n in res["notes"])
    asked = bench.run_bench(bench.discover([models["fp32"]], backends=["nogpu"]), sizes=[(32, 32)], frames=2)
    assert [(r["backend"], r["status"]) for r in asked["rows"]] == [("nogpu", "failed")]
    assert "no CUDA device" in asked["rows"][0]["error"]


def test_backends_that_build_precisions_get_a_row_each(models, monkeypatch):
    from edgerestore.runtime import artifacts
    from edgerestore.runtime import backends as registry

    monkeypatch.setitem(registry.REGISTRY, "builds", "tests.test_bench:BuildsPrecisions")
    monkeypatch.setitem(artifacts.FILE_TYPES, ".onnx", artifacts.FILE_TYPES[".onnx"]._replace(
        backends=("onnxruntime", "builds")))
    res = bench.run_bench(bench.discover([models["fp32"]]), sizes=[(32, 32)], frames=2, warmup=0)
    assert sorted(r["id"] for r in res["rows"]) == [
        "tiny/builds/fp16/32x32", "tiny/builds/int8/32x32", "tiny/onnxruntime/fp32/32x32"]
    assert all(r["status"] == "ok" for r in res["rows"])


BLOCK_TORCH = """
import sys
class _NoTorch(object):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name == "matplotlib" or name == "jsonschema":
            raise ImportError("%s is blocked: a board has none" % name)
        return None
sys.meta_path.insert(0, _NoTorch())
from edgerestore.cli import main
main(sys.argv[1:])
"""


def test_bench_runs_on_a_board_without_torch_matplotlib_or_jsonschema(models, small_evalset, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "board.json"
    res = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, "bench", str(models["fp32"]), str(models["int8"]), "--sizes", "32x32",
         "--frames", "3", "--warmup", "1", "--evalset", small_evalset[0], "--baselines", "none,bilateral",
         "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=str(root), EDGERESTORE_CACHE=str(tmp_path / "cache")))
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    schema.validate(data, use_jsonschema=False)
    assert {r["status"] for r in data["rows"]} == {"ok"} and len(data["rows"]) == 4
    fp32 = [r for r in data["rows"] if r["precision"] == "fp32"][0]
    assert fp32["macs_per_pixel"] is None  # counting MACs needs torch; nothing else does
    assert data["software"]["torch"] is None
    assert [r for r in data["rows"] if r["precision"] == "int8"][0]["quality"]["vs_reference"]["psnr"] > 25


def test_teacher_row_from_a_restormer_checkpoint(shared_dir):
    """An official-format Restormer checkpoint (random weights, ../shared/fixtures) as the teacher row."""
    path = shared_dir / "fixtures" / "restormer" / "tiny_withbias.pth"
    res = bench.run_bench(teacher_candidates(path, frames=2), sizes=[(36, 28)], frames=2, warmup=0)
    row = res["rows"][0]
    assert (row["kind"], row["backend"], row["status"], row["frames"]) == ("teacher", "torch", "ok", 2)


def test_the_same_file_twice_is_benched_once(models, tmp_path):
    import shutil

    copy_path = tmp_path / "again.onnx"
    shutil.copy(models["fp32"], copy_path)
    res = bench.run_bench(bench.discover([models["fp32"], copy_path]), sizes=[(32, 32)], frames=2, warmup=0)
    assert [r["id"] for r in res["rows"]] == ["tiny/onnxruntime/fp32/32x32"]
    assert any("same file" in n for n in res["notes"])


def test_a_subset_a_fixed_size_model_cannot_take_is_left_out_whole(small_evalset):
    from edgerestore.benchmarks.baselines import NoRestoration
    from edgerestore.errors import ConfigError

    class Fixed256(NoRestoration):
        """Stand-in shaped like a TFLite model built for 256x256: larger frames are refused."""

        def _run(self, image):
            if image.shape[0] > 256 or image.shape[1] > 256:
                raise ConfigError("frame %dx%d is larger than the model's 256x256" % image.shape[1::-1])
            return image

    _, pairs = small_evalset
    block, outputs = bench.evaluate_quality(Fixed256().load(), pairs)
    assert set(block["vs_ground_truth"]) == {"gopro"}  # 192x192 crops fit; the 451x300 photo does not
    assert "mild/chelsea-0" in block["error"] and "larger than the model" in block["error"]
    ref_block, ref_outputs = bench.evaluate_quality(create_baseline("none"), pairs)
    vs, _ = bench.evaluate_quality(Fixed256().load(), pairs, reference=("none/numpy/-", ref_outputs))
    assert vs["vs_reference"]["images"] == 2 and vs["vs_reference"]["psnr"] == bench.IDENTICAL_PSNR


@pytest.mark.parametrize("preset", shipped_presets())
def test_each_shipped_preset_benches_its_own_files_only(preset):
    """`edgerestore bench nano` benched nano-fast as "nano" (a prefix regex): every preset name."""
    from edgerestore.benchmarks.bench import artifact_owner, shipped_artifacts

    files = shipped_artifacts(preset)
    assert files and all(os.path.basename(f).startswith(preset) for f in files)
    others = [p for p in shipped_presets() if p != preset]
    for other in others:
        assert not set(files) & set(shipped_artifacts(other)), (preset, other)
    assert artifact_owner("nano-fast_int8", {"nano", "nano-fast"}) == "nano-fast"
    assert artifact_owner("nano_int8", {"nano", "nano-fast"}) == "nano"
    assert artifact_owner("nanox", {"nano"}) is None


def _benchmark_script(name):
    """The module of ``benchmarks/<name>.py`` (a script folder, not a package)."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_level_estimate_of_the_separation_benchmark():
    """benchmarks/noise_level_separation.py: Donoho's estimate recovers the sigma of white noise on a
    flat frame, and the AUC orders two sets the right way round."""
    separation = _benchmark_script("noise_level_separation")
    auc, noise_sigma = separation.auc, separation.noise_sigma

    rng = np.random.default_rng(0)
    for sigma in (4.0, 8.0, 16.0):  # below ~3 levels the uint8 rounding biases a median estimate
        frame = np.clip(128 + rng.normal(0, sigma, (256, 256, 1)), 0, 255).round().astype(np.uint8).repeat(3, 2)
        assert noise_sigma(frame) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(np.full((64, 64, 3), 77, np.uint8)) == 0.0
    assert auc([1, 2], [3, 4]) == 1.0 and auc([3, 4], [1, 2]) == 0.0 and auc([1], [1]) == 0.5


def test_student_quality_scores_each_image_as_its_mean_does():
    """benchmarks/student_quality.py's per-image gains (``--per-image``) are the ones its means and
    worst come from; a clean pair scores the output's PSNR against its input."""
    from edgerestore.runtime.quality import psnr
    from edgerestore.runtime.restore import load_backend

    module = _benchmark_script("student_quality")
    rng = np.random.default_rng(3)
    clean = [np.ascontiguousarray(rng.integers(60, 200, (48, 64, 3), dtype=np.uint8)) for _ in range(2)]
    noisy = [np.clip(c.astype(int) + rng.integers(-12, 13, c.shape), 0, 255).astype(np.uint8) for c in clean]
    backend = load_backend("pico", threads=1)
    means, worst, each = module.score(backend, list(zip(noisy, clean)))
    outputs = []
    for image in noisy:
        backend.reset_all()
        outputs.append(backend.infer(image))
    expected = [psnr(o, c) - psnr(n, c) for o, n, c in zip(outputs, noisy, clean)]
    assert np.allclose(each, expected) and worst == min(each)
    assert np.isclose(means[1] - means[0], np.mean(expected))
    means, worst, each = module.score(backend, [(c, c) for c in clean])
    assert np.isinf(means[0]) and np.allclose(each, [psnr(backend.infer(c), c) for c in clean]) and worst == min(each)


def test_student_quality_scores_a_second_photo_set_with_its_own_draws_and_levels(tmp_path):
    """``--photos DIR``: every subset of those photos (tagged with the folder's name), drawn with
    their own seeds, each synthetic draw given its two-draw level; a JPEG-only folder is refused."""
    import cv2

    module = _benchmark_script("student_quality")
    rng = np.random.default_rng(5)
    folder = tmp_path / "kodak-eval"
    folder.mkdir()
    for k in range(2):
        image = cv2.GaussianBlur(rng.integers(0, 255, (700, 40, 3), dtype=np.uint8), (5, 5), 1.0)
        cv2.imwrite(str(folder / ("p%d.png" % k)), image)
    photos = module.read_photos(str(folder))
    assert [p.shape for p in photos.values()] == [(512, 40, 3)] * 2  # centre crops of at most 512 px
    pairs, seeds = module.synthetic(photos, 2, module.PHOTOS_SEED, " (kodak-eval)")
    assert sorted(pairs) == sorted(["%s (kodak-eval)" % s for s in module.SUBSETS + ("clean",)])
    assert all(len(pairs["%s (kodak-eval)" % s]) == 4 for s in module.SUBSETS)
    preset, keys = seeds["noise (kodak-eval)"]
    assert preset == "noise" and keys == [module.PHOTOS_SEED + 100 * i + d for i in range(2) for d in range(2)]
    levels = module.eval_levels(pairs, seeds)
    assert all(v > 0.1 for v in levels["noise (kodak-eval)"]) and levels["compression (kodak-eval)"] == [0.0] * 4
    assert levels["clean (kodak-eval)"] == [0.0] * 2
    results = {"compression (kodak-eval)": ((30.0, 29.9, 0, 0, 0, 0), -0.2), "clean (kodak-eval)": ((np.inf, 46.0, 0, 0, 0, 0), 44.0)}
    assert [(bar, met) for bar, _, met in module.bars("nano-fast", results)] == [
        ("clean (kodak-eval) >= 45 dB", True), ("compression (kodak-eval) >= 0 dB", False)]

    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    cv2.imwrite(str(jpegs / "a.jpg"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(SystemExit, match="lossless"):
        module.read_photos(str(jpegs))


def test_student_quality_tells_a_codec_model_what_a_decoder_reads_off_each_draw(tmp_path):
    """A compression draw's codec: a JPEG's quality, an H.264 draw's QP as its decoder reads it back;
    the other subsets are uncompressed; a ``-codec`` twin meets its preset's bars."""
    from edgerestore import codecinput
    from edgerestore.distill.degrade import degrade, get_preset, sample_params

    module = _benchmark_script("student_quality")
    rng = np.random.default_rng(6)
    photos = {"p": np.ascontiguousarray(rng.integers(40, 220, (64, 96, 3), dtype=np.uint8))}
    pairs, seeds = module.synthetic(photos, 6, module.PHOTOS_SEED)
    codecs = module.eval_codecs(pairs, seeds)
    assert codecs["clean"] == [(0.0, 0.0)] and codecs["blur"] == [(0.0, 0.0)] * 6  # blur: no codec
    kinds = set()
    for subset in ("noise", "compression"):  # the noise preset compresses some draws too
        for told, key in zip(codecs[subset], seeds[subset][1]):
            params = sample_params(get_preset(subset), key)
            kinds.add(params.codec)
            if params.codec == "h264":
                qps = []
                degrade(photos["p"], key, get_preset(subset), qps=qps)
                assert told == codecinput.strengths("h264", h264_qp=qps[0]) and told[1] > 0
            else:
                assert told == codecinput.of_params(params)
    assert kinds == {"none", "jpeg", "h264"}
    assert module.eval_codecs(pairs, seeds, qp="crf")["compression"] == [
        codecinput.of_params(sample_params(get_preset("compression"), k)) for k in seeds["compression"][1]]
    results = {"mild": ((28.0, 28.3, 0, 0, 0, 0), -0.1)}
    assert module.bars("nano-codec", results)[0][0] == "mild >= +1.5 dB"


def test_frame_filter_prototype_starts_as_the_identity_and_its_bank_deblurs():
    """benchmarks/global_filter.py: the predictor starts as a delta, each frame gets its own filter,
    the Wiener bank's corrections sum to zero and lie along their angle, the whitening evens out
    the patches' spectrum, and the statistics see the blur's direction."""
    import cv2
    import torch

    from edgerestore.distill import degrade as deg

    gf = _benchmark_script("global_filter")
    rng = np.random.default_rng(0)
    x = torch.rand(2, 3, 24, 32)
    model = gf.FilterPredictor(3, 9)
    assert torch.equal(gf.apply(x, model(torch.zeros(2, 3))), x)
    filters = torch.randn(2, 5, 5)
    out = gf.apply(x, filters)
    for n in range(2):
        padded = torch.nn.functional.pad(x[n:n + 1], (2, 2, 2, 2), mode="reflect")
        own = torch.nn.functional.conv2d(padded, filters[n].expand(3, 1, 5, 5), groups=3)
        assert torch.allclose(out[n:n + 1], own, atol=1e-5)

    bank = gf.inverse_bank(9)
    assert bank.shape == (gf.ANGLES * len(gf.LENGTHS) + len(gf.RADII), 9, 9)
    assert bank.sum((1, 2)).abs().max() < 1e-5
    across, down = bank[gf.ANGLES].numpy(), bank[gf.ANGLES + gf.ANGLES // 2].numpy()  # length 5 at 0 and 90 degrees
    assert np.allclose(across, down.T, atol=1e-4)  # a quarter turn apart
    assert np.allclose(across, across[::-1, ::-1], atol=1e-4)  # a line blur's inverse is point-symmetric
    assert np.abs(across)[4].sum() > 4 * np.abs(across)[0].sum()  # it works along its line (the centre row)
    kernel = deg.linear_kernel(5.0, 0.0)
    crops = (rng.random((8, 40, 40, 3)) * 255).astype(np.uint8)
    crops = np.stack([cv2.GaussianBlur(c, (0, 0), 1.5) for c in crops])
    white = gf.whitening(crops, 5, samples=20000).double().numpy()
    patches = np.lib.stride_tricks.sliding_window_view(crops[..., 0] / 255.0, (5, 5), axis=(1, 2)).reshape(-1, 25)
    gram = patches.T @ patches / len(patches)
    assert np.linalg.cond(white @ gram @ white) < 0.01 * np.linalg.cond(gram)

    noise = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    across = torch.from_numpy(cv2.filter2D(noise[0].permute(1, 2, 0).numpy(), -1, kernel[::-1, ::-1].copy())
                              ).permute(2, 0, 1)[None]
    stats = gf.frame_statistics(across)[0]
    horizontal, vertical = stats[:len(gf.DISTANCES)], stats[2 * len(gf.DISTANCES):3 * len(gf.DISTANCES)]
    assert (horizontal[:3] < vertical[:3]).all()


def test_best_filter_oracle_and_blur_estimate_shapes():
    """benchmarks/deblur_ceiling.py's per-draw least-squares filter undoes what a filter did (a
    one-pixel shift), and benchmarks/blur_estimate.py reads one descriptor off a frame's tiles."""
    from edgerestore.runtime.quality import psnr

    ceiling = _benchmark_script("deblur_ceiling")
    estimate = _benchmark_script("blur_estimate")
    rng = np.random.default_rng(1)
    import cv2

    clean = cv2.GaussianBlur((rng.random((64, 80, 3)) * 255).astype(np.uint8), (0, 0), 1.2)
    shifted = np.roll(clean, 1, axis=1)
    out = ceiling.best_filter(shifted, clean, 5, samples=4000)
    assert psnr(out[4:-4, 4:-4], clean[4:-4, 4:-4]) > 45 > psnr(shifted, clean)
    model = estimate.Estimator().eval()
    descriptor = estimate.frame_descriptor(model, clean, patch=32, patches=4)
    assert len(descriptor) == 3 and all(np.isfinite(descriptor))


def test_motion_blur_draws_a_smear_the_flow_between_frames_measures():
    """benchmarks/motion_blur.py: frame 2 is frame 1 moved by ``v`` and smeared along it; the flow
    between the two degraded frames gives ``v`` back (a steady pan), and with the true exposure share
    the blur."""
    from skimage import data as skdata

    module = _benchmark_script("motion_blur")
    photo = np.ascontiguousarray(skdata.astronaut()[100:292, 120:376])
    previous, current, second, sharp, truth, (vx, vy, share, crf) = module.draw(photo, np.random.default_rng(3), tremor=0.0)
    still = module.draw(photo, np.random.default_rng(3), still=True)
    assert still[4] == (0.0, 0.0, 0.0) and still[5][:2] == (0.0, 0.0)
    assert previous.shape == current.shape == second.shape == sharp.shape and 20 <= crf <= 30
    assert not np.array_equal(current, second)  # another draw of the noise
    flow = module.dense_flow(current, previous)
    h, w = flow.shape[:2]
    fx, fy = -np.median(flow[h // 4:-h // 4, w // 4:-w // 4].reshape(-1, 2), axis=0)
    assert abs(fx - vx) < 0.5 and abs(fy - vy) < 0.5
    found = module.line_descriptor(float(np.hypot(fx, fy)) * share, float(np.degrees(np.arctan2(fy, fx))))
    assert np.allclose(found, truth, atol=0.05) and truth[0] > 0.05
    assert module.line_descriptor(0.2, 30.0) == (0.0, 0.0, 0.0)
    # a camera that held still did not smear, whatever the picture-only estimator reads
    import torch

    estimate = _benchmark_script("blur_estimate")
    model, saved = estimate.Estimator(level=True).eval(), {"patch": 32, "patches": 4}
    with torch.no_grad():
        model.head.bias.fill_(1.0)  # an estimator that sees blur everywhere
    still_found = module.describe(still[0], still[1], 0.5, 0.0, model, saved)
    assert still_found["flow-bounded estimate"] == (0.0, 0.0, 0.0) and still_found["patch estimator"][0] > 0.5
    moving = module.describe(previous, current, share, 0.0, model, saved)
    assert np.allclose(moving["flow, share known"], found) and moving["flow-bounded estimate"][0] > 0


def test_motion_blur_smears_a_real_clip_along_its_own_motion():
    """benchmarks/motion_blur.clip_draw on a clip that pans ``v`` per frame: the sharp target is the
    picture at the middle of the exposure, and the smear runs along ``v`` (not against it)."""
    from skimage import data as skdata

    from edgerestore.runtime.quality import psnr

    module = _benchmark_script("motion_blur")
    photo = np.ascontiguousarray(skdata.astronaut()[60:316, 100:420])
    vx, vy = 4.0, 1.0
    frames = [module.moved(photo, k * vx, k * vy) for k in range(3)]
    previous, current, second, sharp, truth, (fx, fy, share, crf) = module.clip_draw(frames, 2, np.random.default_rng(5))
    assert abs(fx - vx) < 0.5 and abs(fy - vy) < 0.5
    inner = (slice(40, -40), slice(40, -40))
    middle = module.moved(photo, (2 - share / 2) * vx, (2 - share / 2) * vy)
    assert psnr(sharp[inner], middle[inner]) > max(30.0, psnr(frames[2][inner], middle[inner]) + 3)
    assert truth[0] > 0 and truth[1] > 0  # a mostly horizontal smear


def test_motion_blur_filters_per_tile_agree_with_one_filter_under_one_motion():
    """benchmarks/motion_blur.tiled: a flow that is the same everywhere gives every tile the frame's
    filter, so the tiles put together are the one-filter output; a flow that differs changes them."""
    import torch

    module = _benchmark_script("motion_blur")
    torch.manual_seed(0)
    model = module.gf.FilterPredictor(4, 5, precondition=torch.eye(25) * 0.1)
    torch.nn.init.normal_(model.mlp[-1].weight, std=0.5)  # taps that depend on the motion
    x = torch.rand(1, 3, 40, 56)
    flow = np.zeros((40, 56, 2), np.float32)
    flow[...] = (-3.0, -1.0)

    def told(length, angle):
        return module.line_descriptor(length * 0.8, angle)

    whole = module.through(model, x, told(float(np.hypot(3.0, 1.0)), float(np.degrees(np.arctan2(1.0, 3.0)))), 0.1)
    def gap(a):  # the largest difference in uint8 levels (1: float rounding of another conv kernel)
        return int(np.abs(a.astype(np.int16) - whole).max())

    assert gap(module.tiled(model, x, flow, 16, told, 0.1)) <= 1
    flow[:, 28:] = (0.0, 0.0)  # the right half holds still
    assert gap(module.tiled(model, x, flow, 16, told, 0.1)) > 4
    whole = module.through(model, x, (0.0, 0.0, 0.0), 0.1)  # no flow to trust: every tile told "no blur"
    assert gap(module.tiled(model, x, flow, 16, told, 0.1, np.zeros((40, 56), bool))) <= 1


def test_motion_blur_forward_backward_check_flags_a_flow_that_does_not_return():
    """benchmarks/motion_blur.consistent: a flow and its exact inverse agree; where the way back
    disagrees by more than the tolerance, the flow is not trusted."""
    module = _benchmark_script("motion_blur")
    flow = np.zeros((24, 32, 2), np.float32)
    flow[...] = (2.0, -1.0)
    back = -flow
    assert module.consistent(flow, back).all()
    back[:, 16:] = 0.0  # the way back says the right half did not move
    trusted = module.consistent(flow, back)
    assert trusted[:, :12].all() and not trusted[:, 20:].any()


def test_deblur_motion_times_the_stage_on_a_pan(monkeypatch):
    """``deblur="motion"``: a student with a filter beside it runs the motion deblur stage, timed on a
    pan where its tiles move (and are filtered); one without a filter gets a failed row that names
    the fix; the settings say how the frames were made."""
    from edgerestore.runtime import framefilter
    from edgerestore.weights import shipped_path

    filtered = []
    real = framefilter.MotionDeblur.__call__

    def spy(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        filtered.append(self.tiles_filtered)
        return out

    monkeypatch.setattr(framefilter.MotionDeblur, "__call__", spy)
    cands = (bench.artifact_candidates(shipped_path("nano-codec", ".onnx"), backends=["onnxruntime"])
             + bench.artifact_candidates(shipped_path("nano", ".onnx"), backends=["onnxruntime"]))
    res = bench.run_bench(cands, sizes=[(256, 128)], frames=4, warmup=1, threads=1, deblur="motion")
    rows = {row["method"]: row for row in res["rows"]}
    assert rows["nano-codec"]["status"] == "ok" and rows["nano-codec"]["params"]["deblur"] == "motion"
    assert filtered and filtered[-1] > 0  # the pan moved its tiles, and they went through filters
    assert rows["nano"]["status"] == "failed" and "--deblur none" in rows["nano"]["error"]
    assert res["settings"]["deblur"] == "motion" and "pan" in res["settings"]["frames_source"]
    from edgerestore.benchmarks import report

    facts = dict(report.board_facts(report.merge([res])[0]))
    assert "--deblur motion" in facts["deblur"] and "pan" in facts["deblur"]
    with pytest.raises(Exception, match="deblur"):
        bench.run_bench(cands[:1], sizes=[(64, 64)], frames=1, warmup=0, deblur="sideways")
    frames = bench.panning_frames(np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (32, 1, 3)), 2)
    assert frames[0].shape == frames[1].shape == (32, 256, 3)
    assert np.abs(frames[1][:, :200].astype(int) - frames[0][:, 6:206]).max() <= 1  # 6 px along
