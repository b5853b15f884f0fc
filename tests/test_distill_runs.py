"""Whole distillation runs, tiny: the real command (in this process where the process is not the point),
real signals, real torchrun, real files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgerestore.distill.config import load_config
from edgerestore.distill.trainer import train
from edgerestore.models.checkpoint import load_student, save_student
from tests.conftest import ROOT, invoke_cli, run_cli
from tests.distill_helpers import TINY, gopro_layout, mean, read_log, small_images, tiny_args

# Strong noise and a constant learning rate: a few dozen steps visibly learn something.
NOISY = '{base: noise, gaussian_sigma: [15, 25], jpeg_prob: 0, h264_prob: 0}'


@pytest.fixture(scope="module")
def images(data_dir, tmp_path_factory):
    return small_images(data_dir, tmp_path_factory.mktemp("distill-data") / "images", count=5)


@pytest.fixture(scope="module")
def tiny_restormer(shared_dir):
    path = shared_dir / "fixtures" / "restormer" / "tiny_withbias.pth"
    if not path.is_file():
        pytest.skip("Restormer fixture absent: %s" % path)
    return path


def _config(images, out, **changes):
    options = dict(TINY)
    options.update({"data.train": [str(images)], "out": str(out), "student.preset": "pico"})
    options.update({k.replace("__", "."): v for k, v in changes.items()})
    return load_config(None, options)


def _env(tmp_path):
    return {"EDGERESTORE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_tiny_run_lowers_the_loss_and_its_checkpoint_restores_and_exports(images, tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("distill", images, "--student", "pico", "--out", out, "--steps", 60, "--lr", "1e-2",
                     "--degradation", NOISY, "-q", *tiny_args(optim__schedule="constant", optim__ema=0.9,
                                                               data__refresh=0, train__batch=8),
                     env=_env(tmp_path))
    assert "done: 60 steps" in result.stdout
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 61))
    first, last = mean(r["loss"] for r in rows[:10]), mean(r["loss"] for r in rows[-10:])
    assert last < 0.97 * first, (first, last)
    final, info = load_student(out / "student.pt")
    meta = info["meta"]
    assert info["preset"] == "pico" and meta["step"] == 60 and "train_state" not in meta
    assert meta["best_val_psnr"] > meta["input_psnr"]  # the student beats doing nothing
    assert "train_state" in load_student(out / "last.pt")[1]["meta"]
    # evaluate scores the same held-out crops the run validated on
    table = invoke_cli("distill", "evaluate", out / "student.pt", "--run", out, env=_env(tmp_path)).stdout
    input_row, student_row = table.splitlines()[1:]
    assert input_row.split()[:2] == ["input", "(degraded)"] and student_row.split()[0].endswith("run/student.pt")
    assert float(input_row.split()[2]) == pytest.approx(meta["input_psnr"], abs=0.01)
    assert float(student_row.split()[1]) == pytest.approx(meta["val_psnr"], abs=0.01)
    assert (out / "best.pt").is_file() and (out / "config.yaml").is_file() and list((out / "tb").iterdir())
    # the runtime takes the checkpoint as it is
    restored = tmp_path / "restored.png"
    invoke_cli("restore", next(images.glob("*.png")), restored, "--model", out / "student.pt", "-q", env=_env(tmp_path))
    assert restored.is_file()
    # and it exports to the uint8 ONNX contract
    import onnxruntime as ort

    from edgerestore.export.onnx import export_onnx, reference_uint8

    onnx_path = export_onnx(final, tmp_path / "student.onnx", 32, 48)
    frame = np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"frame": frame})[0]
    expected = reference_uint8(final, torch.from_numpy(frame)).numpy()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def _popen(args, env):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.Popen([sys.executable, "-m", "edgerestore", *map(str, args)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_then_resume_ends_like_an_uninterrupted_run(images, tmp_path):
    steps = 150
    args = ["distill", images, "--student", "pico", "--steps", steps, "-q",
            *tiny_args(train__checkpoint_every=1000, optim__warmup=20)]
    run_cli(*args, "--out", tmp_path / "whole", env=_env(tmp_path))

    stopped = tmp_path / "stopped"
    process = _popen(args + ["--out", stopped], _env(tmp_path))
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        log = stopped / "log.csv"
        if log.is_file() and len(read_log(log)) >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted: %s" % (process.communicate(),)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stdout and "--resume" in stdout
    at = load_student(stopped / "last.pt")[1]["meta"]["step"]
    assert 10 <= at < steps and not (stopped / "student.pt").exists()

    result = run_cli("distill", "--out", stopped, "--resume", "-q", env=_env(tmp_path))
    assert "done: %d steps" % steps in result.stdout
    whole, resumed = read_log(tmp_path / "whole" / "log.csv"), read_log(stopped / "log.csv")
    assert [r["step"] for r in resumed] == [r["step"] for r in whole]  # no step lost or repeated
    assert [r["lr"] for r in resumed] == [r["lr"] for r in whole]  # the same schedule
    a, _ = load_student(tmp_path / "whole" / "student.pt")
    b, info = load_student(stopped / "student.pt")
    assert info["meta"]["step"] == steps
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-5), name  # same data, same updates


def test_two_processes_under_torchrun_train_and_save_once(images, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ)
    env.update(_env(tmp_path))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "edgerestore", "distill", str(images), "--student", "pico", "--out", str(out),
               "--steps", "12", "-q", *tiny_args(train__val_every=6, train__checkpoint_every=6)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("done: 12 steps") == 1  # rank 0 reports, rank 1 stays quiet
    assert "2 process(es) on cpu" in result.stdout
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 13))  # one writer
    _, info = load_student(out / "student.pt")
    assert info["meta"]["world_size"] == 2 and info["meta"]["step"] == 12
    assert not list(out.glob("*.tmp"))
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt", "student.pt"]


def test_second_run_with_the_cache_calls_the_teacher_zero_times(images, tiny_restormer, tmp_path):
    changes = {"teacher.spec": "restormer:%s" % tiny_restormer, "teacher.cache": str(tmp_path / "cache"),
               "train.steps": 6, "data.crop": 32, "data.val_crop": 32}
    first = train(_config(images, tmp_path / "one", **changes), progress=False, echo=lambda s: None)
    crops = TINY["data.pool"] + 5 * TINY["data.refresh"] + TINY["data.val_count"]
    assert first["teacher_calls"] == crops and first["cache_hits"] == 0
    second = train(_config(images, tmp_path / "two", **changes), progress=False, echo=lambda s: None)
    assert second["teacher_calls"] == 0 and second["cache_hits"] == crops
    assert second["teacher_psnr"] == pytest.approx(first["teacher_psnr"])
    a, _ = load_student(tmp_path / "one" / "student.pt")
    b, _ = load_student(tmp_path / "two" / "student.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_precomputed_teacher_outputs_replace_the_teacher(images, tiny_restormer, tmp_path):
    args = [images, "--student", "pico", "--steps", 5, "-q",
            *tiny_args(data__crop=32, data__val_crop=32)]
    cache = tmp_path / "gpu-box-cache"
    result = invoke_cli("distill", "cache-teacher", *args, "--teacher", "restormer:%s" % tiny_restormer,
                     "--cache", cache, env=_env(tmp_path))
    folder = json.loads(json.dumps(result.stdout.split("folder:")[-1].strip()))
    assert "0 already cached" in result.stdout and Path(folder).is_dir()
    trained = invoke_cli("distill", *args, "--teacher", "folder:%s" % cache, "--out", tmp_path / "run", env=_env(tmp_path))
    assert "teacher: 0 crop(s) computed" in trained.stdout
    # fewer steps than precomputed is fine; a config that needs other crops is a clear error
    failed = invoke_cli("distill", *args, "--teacher", "folder:%s" % cache, "--out", tmp_path / "other",
                     "--seed", 7, check=False, env=_env(tmp_path))
    assert failed.returncode != 0 and "missing from the precomputed teacher outputs" in failed.stderr


def test_feature_distillation_from_a_student_teacher(images, tmp_path):
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    teacher = StudentNet(StudentConfig(scale=4, width=16, blocks=1, context_width=8, context_blocks=1))
    torch.nn.init.normal_(teacher.tail.weight, std=0.01)
    path = save_student(tmp_path / "teacher.pt", teacher)
    config = _config(images, tmp_path / "run", **{"teacher.spec": "student:%s" % path, "loss.feature": 0.5,
                                                  "loss.ms_ssim": 0.1, "loss.freq": 0.1, "train.steps": 4,
                                                  "teacher.cache": "none"})
    summary = train(config, progress=False, echo=lambda s: None)
    rows = read_log(tmp_path / "run" / "log.csv")
    assert float(rows[-1]["feature"]) > 0 and float(rows[-1]["teacher"]) > 0 and float(rows[-1]["ms_ssim"]) > 0
    state = load_student(tmp_path / "run" / "last.pt")[1]["meta"]["train_state"]
    assert state["adapter"]["proj.weight"].shape == (16, 12, 1, 1)  # teacher width x pico width
    assert summary["teacher_calls"] >= 4 * TINY["train.batch"]


def test_paired_data_and_a_folder_of_teacher_images(data_dir, tmp_path):
    pairs = gopro_layout(data_dir, tmp_path / "gopro")
    outputs = tmp_path / "restored"
    for blurred in pairs.rglob("blur/*.png"):  # a "teacher" that returns the sharp frame
        target = outputs / blurred.relative_to(pairs)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((blurred.parent.parent / "sharp" / blurred.name).read_bytes())
    config = _config(pairs, tmp_path / "run", **{"teacher.spec": "folder:%s" % outputs, "train.steps": 3,
                                                 "data.val_count": 1})
    summary = train(config, progress=False, echo=lambda s: None)
    assert summary["step"] == 3 and summary["teacher_calls"] == 0
    assert summary["teacher_psnr"] == 99.0  # the "teacher" output is the ground truth itself
    assert summary["input_psnr"] < 40  # real motion blur


def _error(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_inputs_are_one_line_errors(images, tiny_restormer, tmp_path):
    env = _env(tmp_path)
    (tmp_path / "empty").mkdir()
    assert "has no images or videos" in _error(invoke_cli("distill", tmp_path / "empty", "--out", tmp_path / "a",
                                                       check=False, env=env))
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(tiny_restormer.read_bytes()[:5000])
    assert "is the file complete" in _error(invoke_cli("distill", images, "--teacher", "restormer:%s" % truncated,
                                                    "--out", tmp_path / "b", *tiny_args(), check=False, env=env))
    line = _error(invoke_cli("distill", images, "--teacher", "student:%s" % tiny_restormer, "--out", tmp_path / "c",
                          *tiny_args(), check=False, env=env))
    assert "not an edgerestore student checkpoint" in line and "--teacher restormer" in line
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    other = save_student(tmp_path / "other.pt", StudentNet(StudentConfig(width=8)))
    line = _error(invoke_cli("distill", images, "--student", "pico", "--set", "student.init=%s" % other,
                          "--out", tmp_path / "d", *tiny_args(), check=False, env=env))
    assert "different architecture: width=8 (expected 12)" in line
    assert "unknown teacher 'resnet'" in _error(invoke_cli("distill", images, "--teacher", "resnet:x",
                                                        "--out", tmp_path / "e", *tiny_args(), check=False, env=env))
    line = _error(invoke_cli("distill", images, "--out", tmp_path / "f", check=False, env=env))
    assert "smaller than the 128 px training patches; lower data.patch" in line


def test_runs_are_not_overwritten_and_resume_keeps_its_config(images, tmp_path):
    env = _env(tmp_path)
    out = tmp_path / "run"
    invoke_cli("distill", images, "--out", out, "--steps", 3, "-q", *tiny_args(), env=env)
    assert "already holds a run" in _error(invoke_cli("distill", images, "--out", out, "--steps", 3, *tiny_args(),
                                                   check=False, env=env))
    line = _error(invoke_cli("distill", "--out", out, "--resume", "--lr", "0.5", check=False, env=env))
    assert "optim.lr (run: 0.002, given: 0.5)" in line
    done = invoke_cli("distill", "--out", out, "--resume", "--workers", 0, "-q", env=env)
    assert "done: 3 steps" in done.stdout  # nothing left to do, nothing broken
    assert "nothing to resume" in _error(invoke_cli("distill", "--out", tmp_path / "none", "--resume",
                                                 check=False, env=env))


def test_teacher_route_runs_the_teacher_only_on_the_routed_crops(images, tiny_restormer, tmp_path):
    """teacher.route: a denoiser teacher's output is the target of the noise crops only; the others
    take the ground truth, and the teacher never runs on them."""
    from edgerestore.distill import data as D
    from edgerestore.errors import ConfigError

    mix = {"mix": {"none": 0.5, "noise": 0.5}}
    changes = {"teacher.spec": "restormer:%s" % tiny_restormer, "teacher.cache": "none", "train.steps": 6,
               "data.crop": 32, "data.val_crop": 32, "data.degradation": mix, "teacher.route": ["noise"]}
    config = _config(images, tmp_path / "routed", **changes)
    summary = train(config, progress=False, echo=lambda s: None)
    renderer = D.Renderer(D.load_items([str(images)])[0], mix)
    crops = TINY["data.pool"] + 5 * TINY["data.refresh"]
    assert 0 < summary["teacher_calls"] < crops + TINY["data.val_count"]
    names = [renderer.component(D.train_spec(renderer.items, k, 32, 0)) for k in range(crops)]
    assert set(names) == {"none", "noise"}
    samples = [{"clean": np.zeros(1), "teacher": None, "component": name} for name in ("none", "noise", "pairs")]
    from edgerestore.distill.teacher import route_targets

    assert route_targets(samples, ["noise", "pairs"]) == 1
    assert samples[0]["teacher"] is samples[0]["clean"] and samples[1]["teacher"] is None
    with pytest.raises(ConfigError, match="teacher.route: blur is not among this run's crops; choose from: none, noise, pairs"):
        train(_config(images, tmp_path / "bad", **dict(changes, **{"teacher.route": ["blur"]})), progress=False,
              echo=lambda s: None)
