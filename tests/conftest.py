"""Shared fixtures: where the real data is, and how to run the real command."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGERESTORE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip("real data %s is absent (it lives in ../shared beside the checkout)" % path)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data: real images and clips (read-only; copy what you modify)."""
    return _require(DATA)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def real_clip(data_dir) -> Path:
    """A real H.264 clip (320x240, 36 frames, public domain)."""
    return _require(data_dir / "video" / "realshort.mp4")


@pytest.fixture(scope="session")
def gopro_pair(data_dir):
    """(blurry, sharp) paths of a real GoPro motion-blur pair."""
    base = data_dir / "real_blur" / "gopro_pairs"
    return _require(base / "Istanbul_blur1.png"), _require(base / "Istanbul_sharp1.png")


def read_rgb(path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return np.ascontiguousarray(image[:, :, ::-1])


def run_cli(*args, check=True, env=None, timeout=600, cwd=None):
    """Run the real ``edgerestore`` command (``python -m edgerestore``) from this checkout."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("EDGERESTORE_CACHE", str(ROOT / ".pytest_cache" / "edgerestore-cache"))
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "edgerestore", *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            "edgerestore %s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), result.returncode, result.stdout, result.stderr)
        )
    return result


def invoke_cli(*args, check=True, env=None, cwd=None, timeout=None):
    """``edgerestore`` run in this process through its entry point (:func:`edgerestore.cli.main`):
    the same exit code, stdout and stderr as :func:`run_cli` without starting an interpreter and
    importing torch again. For what a command prints and returns; :func:`run_cli` where the process
    itself is the point (native log lines, signals, imports, a terminal). The environment, the
    working directory, ``sys.argv`` and torch's thread count are restored afterwards; ``timeout`` is accepted for
    :func:`run_cli`'s signature (pytest-timeout ends a command that hangs)."""
    import contextlib
    import io

    from edgerestore.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # a torch-free install
        torch = threads = None
    os.environ.setdefault("EDGERESTORE_CACHE", str(ROOT / ".pytest_cache" / "edgerestore-cache"))
    os.environ.update({key: str(value) for key, value in (env or {}).items()})
    code = 0
    try:
        if cwd:
            os.chdir(str(cwd))
        sys.argv = [os.path.join(os.path.dirname(sys.executable), "edgerestore")] + argv
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:  # as the interpreter does: a non-integer code is printed, exit 1
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        if torch is not None:
            torch.set_num_threads(threads)
    result = subprocess.CompletedProcess(["edgerestore", *argv], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError("edgerestore %s failed (%d):\n%s\n%s" % (" ".join(argv), code, result.stdout,
                                                                      result.stderr))
    return result


@pytest.fixture
def cli():
    """:func:`invoke_cli`: the command in this process."""
    return invoke_cli


@pytest.fixture
def cli_process():
    """:func:`run_cli`: the command as its own process."""
    return run_cli


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny random student (stride 4, width 8, no blocks) exported with the uint8 contract.

    Its tail is randomised (a fresh student starts as the identity), so that restored frames
    visibly differ from their input — tests can tell whether a frame went through the model.
    """
    import torch

    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    student = StudentNet(StudentConfig(scale=4, width=8, blocks=0))
    torch.nn.init.normal_(student.tail.weight, std=0.05)
    path = tmp_path_factory.mktemp("tiny-model") / "tiny.onnx"
    export_onnx(student, path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Real tiny models for bench and report (FP32 and INT8 ONNX, a corrupt file, a checkpoint),
    built once per test session."""
    from tests.bench_helpers import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def small_evalset(tmp_path_factory, data_dir):
    """``(folder, pairs)`` of a small real evaluation set (bench_helpers.make_small_evalset), built once."""
    from edgerestore.benchmarks import evalset
    from tests.bench_helpers import make_small_evalset

    folder = make_small_evalset(tmp_path_factory.mktemp("eval") / "set", data_dir)
    return str(folder), evalset.load_evalset(str(folder))


def pytest_sessionfinish(session, exitstatus):
    """Kill child processes a failed test left behind (a hung DataLoader worker, say): an orphan that
    keeps pytest's output pipe open stalls CI after the summary line. Stop 32's CI ran to its 90-minute
    limit after such a worker hung."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
