"""The board boundary, measured: every module a board command can import is torch-free and 3.6-clean.

The closure is computed from the source by :mod:`tests.board_closure` (imports at any depth and
plugin-registry strings, stopping at ``edgerestore.host``); nothing here lists board modules.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.board_closure import HOST_DOOR, ROOT, board_modules, chain

HOST_ONLY = ("torch", "torchvision", "tensorflow", "onnxsim", "onnx2tf")


@pytest.fixture(scope="module")
def closure():
    via = {}
    return board_modules(via), via


def test_the_closure_follows_commands_registries_and_relative_imports(closure):
    modules, via = closure
    from edgerestore.cli import BOARD_COMMANDS, COMMANDS

    for command in BOARD_COMMANDS:
        assert COMMANDS[command].split(":")[0] in modules
    # reached only through registry strings or function-level imports
    for name in ("edgerestore.runtime.backends.tflite", "edgerestore.runtime.backends.tensorrt_engine",
                 "edgerestore.runtime.sources.picamera", "edgerestore.runtime.sinks.http",
                 "edgerestore.runtime.artifacts", "edgerestore.benchmarks.evalset", HOST_DOOR):
        assert name in modules, name
    # the host door is where the walk stops: what it reaches is not board code
    assert not [m for m in modules if m.startswith(("edgerestore.models", "edgerestore.export"))], (
        [chain(via, m) for m in modules if m.startswith(("edgerestore.models", "edgerestore.export"))])
    # host commands stay out
    assert "edgerestore.cli.distill" not in modules and "edgerestore.cli.export" not in modules


def test_board_commands_never_import_torch(closure):
    modules, via = closure
    bad = ["%s imports %s" % (chain(via, name), ", ".join(sorted(theirs & set(HOST_ONLY))))
           for name, (_, theirs) in modules.items() if theirs & set(HOST_ONLY)]
    assert not bad, "board code reaches host-only libraries (go through edgerestore.host):\n" + "\n".join(bad)


def _vermin():
    found = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(found):
        pytest.skip("vermin is not installed (pip install -e '.[dev]')")
    return found


def test_vermin_passes_the_closure_at_python_36(closure):
    modules, _ = closure
    paths = sorted(path for path, _ in modules.values())
    # dataclasses is a dependency on 3.6 (setup.py: dataclasses; python_version<'3.7')
    result = subprocess.run(
        [_vermin(), "-q", "--no-tips", "-t=3.6-", "--violations", "--eval-annotations", "--backport", "dataclasses",
         *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), (
        "board code needs Python > 3.6:\n" + result.stdout + result.stderr)


def _python36():
    found = shutil.which("python3.6") and subprocess.run(["python3.6", "--version"], capture_output=True).returncode == 0
    if found:
        return "python3.6"
    versions = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")))
    if not versions:
        pytest.skip("no Python 3.6 on this machine (vermin above checks the same closure)")
    return versions[-1]


def test_a_real_python_36_compiles_the_closure(closure, tmp_path):
    modules, _ = closure
    paths = sorted(path for path, _ in modules.values())
    code = ("import py_compile, sys\nfor p in sys.argv[1:]:\n"
            "    py_compile.compile(p, cfile=%r + '/x.pyc', doraise=True)\n" % str(tmp_path))
    result = subprocess.run([_python36(), "-c", code, *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_board_command_imports_with_torch_blocked():
    from edgerestore.cli import BOARD_COMMANDS, COMMANDS

    modules = sorted({COMMANDS[c].split(":")[0] for c in BOARD_COMMANDS})
    code = ("import sys\nfor name in ('torch', 'torchvision', 'tensorflow'):\n    sys.modules[name] = None\n"
            "import importlib\nfor m in %r:\n    importlib.import_module(m)\n"
            "import edgerestore.runtime.artifacts, edgerestore.runtime.backends.tensorrt_engine\n" % modules)
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
