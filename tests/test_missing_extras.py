"""On the README's `cpu` install (no torch, no matplotlib) host commands give one line naming the extra."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

BLOCK = "import sys\nfor name in %r:\n    sys.modules[name] = None\nfrom edgerestore.cli import main\nmain(sys.argv[1:])\n"


def _run(blocked, *args, cwd):
    code = BLOCK % (list(blocked),)
    return subprocess.run([sys.executable, "-c", code] + [str(a) for a in args], cwd=str(cwd), timeout=120,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args, blocked, extra", [
    (["export", "nano", "--target", "cpu", "--out", "b"], ("torch",), "host"),
    (["distill", "DATA", "--out", "r"], ("torch",), "host"),
    (["report", "x.json", "--out", "rep"], ("matplotlib",), "report"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, args, blocked, extra):
    (tmp_path / "DATA").mkdir()
    (tmp_path / "x.json").write_text("{}")
    result = _run(blocked, *args, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 4 and len(lines) == 1, result.stderr
    assert "pip install 'edgerestore[%s]'" % extra in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "rep").exists()  # report left no empty plots folder behind
