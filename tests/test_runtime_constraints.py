"""The board runtime's constraints: Python 3.6 syntax/APIs, no torch, a light `run --help`."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _python(code, env=None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                            cwd=str(ROOT), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_runtime_runs_a_model_without_importing_torch(tiny_onnx, real_clip, tmp_path):
    """File -> ORT -> file, test pattern -> HTTP + null, preview composition: torch stays out."""
    out = tmp_path / "out.mp4"
    code = """
import json, sys
from edgerestore.runtime.runner import run
from edgerestore.runtime.preview import run_preview
a = run(%r, ["file://%s"], model=%r)
b = run("test://pattern?size=64x48&realtime=0", ["null://", "http://127.0.0.1:0"], model=%r, max_frames=10)
c = run_preview("test://pattern?size=64x48&realtime=0&frames=5", ["null://"], model=%r, mode="split")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "edgerestore.models"))
print(json.dumps({"frames": [a["frames"], b["frames"], c["frames"]], "heavy": heavy,
                  "torch": "torch" in sys.modules}))
""" % (str(real_clip), out, str(tiny_onnx), str(tiny_onnx), str(tiny_onnx))
    report = json.loads(_python(code).strip().splitlines()[-1])
    assert report["frames"] == [36, 10, 5]
    assert report["torch"] is False and report["heavy"] == []


def test_run_help_imports_nothing_heavy():
    """`edgerestore run --help` on a Pi must not load numpy, OpenCV, ONNX Runtime, PyAV or torch."""
    code = """
import json, sys
from edgerestore.cli import cli
try:
    cli.main(args=["run", "--help"], prog_name="edgerestore", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("numpy", "cv2", "onnxruntime", "av", "torch", "tqdm") if m in sys.modules)))
"""
    output = _python(code)
    assert "--source" in output  # the help text itself was printed
    assert json.loads(output.strip().splitlines()[-1]) == []
