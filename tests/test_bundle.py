"""Reading bundles on the board: hashes, target, artifact choice, and running one with `restore`."""

import json
import os
import subprocess
import sys

import pytest

from edgerestore.errors import BundleError, InputNotFoundError
from edgerestore.models.resolve import resolve_model
from edgerestore.runtime.bundle import is_bundle, load_bundle
from tests.export_helpers import copy_bundle, exported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def rpi4_bundle(tmp_path):
    return copy_bundle(exported("rpi4"), tmp_path / "rpi4")


def test_load_and_select(rpi4_bundle):
    bundle = load_bundle(rpi4_bundle)
    assert bundle.target == "rpi4" and is_bundle(rpi4_bundle)
    assert bundle.select()["format"] == "tflite-int8"  # preferred first, and TFLite runs here
    assert bundle.select("onnxruntime")["format"] == "onnx-int8"
    only_ort = lambda name: (name == "onnxruntime", "missing")  # noqa: E731 - a board without TFLite
    assert bundle.select(available=only_ort)["format"] == "onnx-int8"
    with pytest.raises(BundleError) as info:
        bundle.select("tensorrt")
    assert "tflite" in str(info.value) and "onnxruntime" in str(info.value)
    none = lambda name: (False, "%s is not installed" % name)  # noqa: E731
    with pytest.raises(BundleError) as info:
        bundle.select(available=none)
    assert "tflite is not installed" in str(info.value)


def test_a_changed_file_is_refused_by_name(rpi4_bundle):
    with open(str(rpi4_bundle / "model-int8.tflite"), "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(BundleError) as info:
        load_bundle(rpi4_bundle)
    message = str(info.value)
    assert "model-int8.tflite" in message and "does not match" in message and "\n" not in message


def test_a_missing_file_is_refused_by_name(rpi4_bundle):
    os.remove(str(rpi4_bundle / "model.onnx"))
    with pytest.raises(BundleError) as info:
        load_bundle(rpi4_bundle)
    assert "model.onnx is missing" in str(info.value)


def test_a_bundle_for_another_board_is_refused(rpi4_bundle, monkeypatch):
    with pytest.raises(BundleError) as info:
        load_bundle(rpi4_bundle, expect_target="jetson-nano")
    assert "made for rpi4, not jetson-nano" in str(info.value)
    monkeypatch.setenv("EDGERESTORE_TARGET", "cpu")
    with pytest.raises(BundleError):
        load_bundle(rpi4_bundle)
    monkeypatch.setenv("EDGERESTORE_TARGET", "rpi4")
    assert load_bundle(rpi4_bundle).target == "rpi4"


def test_artifacts_that_failed_parity_are_skipped(rpi4_bundle):
    manifest_path = rpi4_bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"][0]["verify"]["status"] = "parity"  # tflite-int8 failed its bars at export
    manifest_path.write_text(json.dumps(manifest))
    bundle = load_bundle(rpi4_bundle)
    assert bundle.select()["format"] == "tflite"
    assert bundle.select("tflite")["format"] == "tflite"


def test_bad_manifests(tmp_path, rpi4_bundle):
    with pytest.raises(InputNotFoundError):
        load_bundle(tmp_path)
    (rpi4_bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError) as info:
        load_bundle(rpi4_bundle)
    assert "not valid JSON" in str(info.value)
    (rpi4_bundle / "manifest.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(BundleError) as info:
        load_bundle(rpi4_bundle)
    assert "schema 99" in str(info.value)


def test_resolve_model_accepts_a_bundle(rpi4_bundle, tmp_path):
    assert resolve_model(str(rpi4_bundle)).name == "model-int8.tflite"
    assert resolve_model(str(rpi4_bundle), backend="onnxruntime").name == "model-int8.onnx"
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputNotFoundError) as info:
        resolve_model(str(tmp_path / "plain"))
    assert "not a bundle" in str(info.value)


def test_restore_runs_a_bundle(cli, data_dir, tmp_path):
    bundle = copy_bundle(exported("rpi5", size=(240, 320)), tmp_path / "rpi5")
    clip = data_dir / "video" / "realshort.mp4"  # 320x240
    result = cli("restore", clip, tmp_path / "out.mp4", "--model", bundle, "-q")
    assert "restored 36 frame(s)" in result.stdout and "model-int8.tflite on tflite" in result.stdout
    result = cli("restore", clip, tmp_path / "out2.mp4", "--model", bundle, "-q", "--backend", "onnxruntime")
    assert "model-int8.onnx on onnxruntime" in result.stdout
    with open(str(bundle / "model.onnx"), "ab") as handle:
        handle.write(b"\0")
    bad = cli("restore", clip, tmp_path / "out3.mp4", "--model", bundle, "-q", check=False)
    assert bad.returncode == 5 and bad.stderr.startswith("error: ") and "model.onnx" in bad.stderr


def test_run_command_takes_a_bundle(cli, data_dir, tmp_path):
    bundle = copy_bundle(exported("rpi5", size=(240, 320)), tmp_path / "rpi5")
    result = cli("run", "--source", data_dir / "video" / "realshort.mp4", "--model", bundle, "--sink", "null://",
                 "--backend", "onnxruntime")
    assert "onnxruntime" in result.stdout


def test_board_side_modules_import_without_torch():
    """What a board imports for bundles, TFLite, TensorRT and build-engine never imports torch."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import edgerestore.runtime.bundle, edgerestore.runtime.backends.tflite\n"
            "import edgerestore.runtime.backends.tensorrt, edgerestore.export.tensorrt\n"
            "import edgerestore.devices.profiles, edgerestore.cli.build_engine, edgerestore.cli.devices\n"
            "print('ok')")
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr
