"""Reading bundles on the board: hashes, target, artifact choice, and running one with `restore`."""

import json
import os
import subprocess
import sys

import pytest

from edgerestore.errors import BackendUnavailableError, BundleError, InputNotFoundError
from edgerestore.runtime.artifacts import resolve
from edgerestore.runtime.bundle import is_bundle, load_bundle
from tests.export_helpers import SIZE, copy_bundle, exported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def rpi4_bundle(tmp_path):
    return copy_bundle(exported("rpi4"), tmp_path / "rpi4")


def _formats(bundle_dir, candidates):
    bundle = load_bundle(bundle_dir)
    return [bundle.artifact_for_file(c.model)["format"] for c in candidates]


def test_resolve_orders_a_bundles_artifacts(rpi4_bundle, monkeypatch):
    from edgerestore.runtime import artifacts, backends

    assert load_bundle(rpi4_bundle).target == "rpi4" and is_bundle(rpi4_bundle)
    height, width = SIZE
    order = _formats(rpi4_bundle, resolve(str(rpi4_bundle), frame_size=(width, height)))
    assert order[0] == "tflite-int8" and set(order) == {"tflite-int8", "tflite", "tflite-fp16", "onnx-int8", "onnx"}
    # a 720p clip does not fit the fixed-size TFLite files: the size-flexible ONNX ones come first
    assert _formats(rpi4_bundle, resolve(str(rpi4_bundle), frame_size=(1280, 720)))[:2] == ["onnx-int8", "onnx"]
    assert _formats(rpi4_bundle, resolve(str(rpi4_bundle), backends="onnxruntime")) == ["onnx-int8", "onnx"]
    with pytest.raises(BundleError) as info:
        resolve(str(rpi4_bundle), backends="tensorrt")
    assert "tflite" in str(info.value) and "onnxruntime" in str(info.value)
    # a board without TFLite runs the first ONNX artifact
    monkeypatch.setattr(backends, "availability", lambda name: (name == "onnxruntime", "%s is not installed" % name))
    engine, chosen = artifacts.load_first(resolve(str(rpi4_bundle), frame_size=(width, height)), threads=1)
    assert os.path.basename(chosen.model) == "model-int8.onnx" and engine.name == "onnxruntime"
    monkeypatch.setattr(backends, "availability", lambda name: (False, "%s is not installed" % name))
    with pytest.raises(BackendUnavailableError) as info:
        artifacts.load_first(resolve(str(rpi4_bundle)))
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
    skipped = []
    order = _formats(rpi4_bundle, resolve(str(rpi4_bundle), on_skipped=lambda root, name: skipped.append(name)))
    assert order[0] == "tflite" and "tflite-int8" not in order and skipped == ["model-int8.tflite"]
    assert _formats(rpi4_bundle, resolve(str(rpi4_bundle), backends="tflite"))[0] == "tflite"


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


def test_a_folder_without_manifest_is_no_bundle(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputNotFoundError) as info:
        resolve(str(tmp_path / "plain"))
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


def test_restore_takes_a_bundles_file_and_a_bundle_fits_the_frame_size(cli, data_dir, tmp_path):
    import cv2

    bundle = copy_bundle(exported("rpi5", size=(240, 320)), tmp_path / "rpi5")
    capture = cv2.VideoCapture(str(data_dir / "video" / "realshort.mp4"))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape[:2] == (240, 320)
    cv2.imwrite(str(tmp_path / "small.png"), frame)
    cv2.imwrite(str(tmp_path / "big.png"), cv2.resize(frame, (1280, 720)))
    # a .tflite file works with restore as it does with run (it used to be refused by restore)
    result = cli("restore", tmp_path / "small.png", tmp_path / "a.png", "--model", bundle / "model.tflite", "-q")
    assert "model.tflite on tflite" in result.stdout and cv2.imread(str(tmp_path / "a.png")).shape == (240, 320, 3)
    # the bundle's fixed-size TFLite models cannot take 720p: the size-flexible ONNX model runs it
    result = cli("restore", tmp_path / "big.png", tmp_path / "b.png", "--model", bundle, "-q")
    assert "on onnxruntime" in result.stdout and cv2.imread(str(tmp_path / "b.png")).shape == (720, 1280, 3)


def test_run_command_takes_a_bundle(cli, data_dir, tmp_path):
    bundle = copy_bundle(exported("rpi5", size=(240, 320)), tmp_path / "rpi5")
    result = cli("run", "--source", data_dir / "video" / "realshort.mp4", "--model", bundle, "--sink", "null://",
                 "--backend", "onnxruntime")
    assert "onnxruntime" in result.stdout


def test_board_side_modules_import_without_torch():
    """What a board imports for bundles, TFLite, TensorRT and build-engine never imports torch."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import edgerestore.runtime.bundle, edgerestore.runtime.backends.tflite\n"
            "import edgerestore.runtime.backends.tensorrt, edgerestore.runtime.backends.tensorrt_engine\n"
            "import edgerestore.devices.profiles, edgerestore.cli.build_engine, edgerestore.cli.devices\n"
            "print('ok')")
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr
