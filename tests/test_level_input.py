"""The noise-level input end to end: the one definition of a level (edgerestore.noiselevel), the
stream meter on a real clip, a student that takes the level, every export format fed it, the
runtime's settings and the command that measures a camera."""

import math

import numpy as np
import pytest
import torch

from edgerestore import noiselevel
from edgerestore.errors import ConfigError
from edgerestore.export.onnx import reference_uint8
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet
from edgerestore.runtime.backends import create_backend
from edgerestore.runtime.backends.base import parse_noise_level
from tests.conftest import ROOT, invoke_cli
from tests.export_helpers import SIZE, copy_bundle, exported, tiny_checkpoint

CLIP = ROOT / "edgerestore" / "data" / "sample" / "office_320x240.mp4"


def clip_frames(count=16):
    import av

    with av.open(str(CLIP)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]
    assert len(frames) == count
    return frames


def noisy(frame, sigma, rng):
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape) + 0.5, 0, 255).astype(np.uint8)


# --- what a level is -------------------------------------------------------------------------------


def test_a_level_counts_read_and_shot_noise_in_tens_of_levels():
    assert noiselevel.of_params(10.0, 0.0) == pytest.approx(1.0)
    assert noiselevel.of_params(0.0, 0.0) == 0.0
    # shot noise at mid-grey: 128 * 255 / peak levels² of variance
    assert noiselevel.of_params(0.0, 128.0 * 255.0 / 100.0) == pytest.approx(1.0)
    assert noiselevel.of_params(6.0, 128.0 * 255.0 / 64.0) == pytest.approx(1.0)


def test_a_pair_reads_white_noise_as_its_sigma_and_zero_when_equal():
    frame = clip_frames(1)[0]
    rng = np.random.default_rng(0)
    assert noiselevel.of_pair(frame, frame) == 0.0
    for sigma in (3.0, 8.0):
        assert noiselevel.of_pair(noisy(frame, sigma, rng), frame) == pytest.approx(sigma / 10.0, abs=0.05)
    with pytest.raises(ValueError, match="differ in shape"):
        noiselevel.of_pair(frame, frame[1:])


def test_the_stream_meter_reads_the_noise_of_a_real_clip_and_nothing_across_a_cut():
    frames = clip_frames(16)
    rng = np.random.default_rng(1)
    clean = noiselevel.StaticNoiseMeter(every=1)
    for frame in frames:
        clean.update(frame)
    assert clean.readings >= 10 and clean.level < 0.2, clean.level
    meter = noiselevel.StaticNoiseMeter(every=1)
    for frame in frames:
        meter.update(noisy(frame, 6.0, rng))
    assert meter.level == pytest.approx(math.hypot(0.6, clean.level), abs=0.08)  # noises add in quadrature
    # one reading every `every` frames, from that frame and the one before it
    sparse = noiselevel.StaticNoiseMeter(every=5)
    for frame in frames:
        sparse.update(noisy(frame, 6.0, rng))
    assert sparse.readings == 3 and sparse.level == pytest.approx(meter.level, abs=0.12)
    # a still picture: no second frame, the level stays where it starts (0: a clean frame)
    still = noiselevel.StaticNoiseMeter(every=1)
    assert still.update(noisy(frames[0], 6.0, rng)) == 0.0
    # a cut between unrelated pictures gives no reading
    assert math.isnan(still.measure(frames[0], 255 - frames[0]))
    assert noiselevel.measure_stream(iter(frames), limit=8)["readings"] == 7


# --- the student -------------------------------------------------------------------------------------


def test_a_level_student_grows_from_a_checkpoint_as_the_same_network(tmp_path):
    torch.manual_seed(0)
    plain = StudentNet(StudentConfig(scale=4, width=8, blocks=1))
    with torch.no_grad():
        plain.tail.weight.normal_(0.0, 0.05)
    path = save_student(tmp_path / "plain.pt", plain, preset=None)
    grown, _ = load_student(path, expect=StudentConfig(scale=4, width=8, blocks=1, level_input=True), grow=True)
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(grown(x, level=0.7), plain(x))
        grown.level_head.fill_(0.5)
        assert torch.equal(grown(x, level=0.0), plain(x)) and torch.equal(grown(x), plain(x))
        per_crop = grown(x, level=torch.tensor([0.0, 1.0]))
        assert torch.equal(per_crop[0], plain(x)[0]) and not torch.equal(per_crop[1], plain(x)[1])
    with pytest.raises(ValueError, match="frame-by-frame"):
        StudentNet(StudentConfig(scale=4, width=8, temporal=True, level_input=True))


def test_training_feeds_each_crop_its_level(data_dir, tmp_path):
    """A tiny run on clean and noisy crops: the level reaches the network (its bias learns)."""
    from tests.distill_helpers import small_images, tiny_args

    images = small_images(data_dir, tmp_path / "images", count=3)
    out = tmp_path / "run"
    invoke_cli("distill", images, "--student", "pico", "--set", "student.config={level_input: true}",
               "--out", out, "--steps", 30, "--lr", "1e-2", "-q",
               "--degradation", "{mix: {noise: 0.5, none: 0.5}}",
               *tiny_args(optim__schedule="constant", data__refresh=0, train__batch=8),
               env={"EDGERESTORE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})
    student, _ = load_student(out / "student.pt")
    assert student.config.level_input and float(student.level_head.detach().abs().max()) > 1e-3


# --- every format takes the level -------------------------------------------------------------------


@pytest.fixture(scope="module")
def level_checkpoint():
    return tiny_checkpoint("tiny-level", bases=1, level=True)


def _reference(student, frame, level):
    return reference_uint8(student, torch.from_numpy(frame)[None], level=level).numpy()[0]


@pytest.mark.parametrize("target", ["rpi4", "jetson"])
def test_every_format_of_a_level_student_exports_verified(level_checkpoint, target):
    result = exported(target, checkpoint=level_checkpoint)
    assert result.rows and all(row.status == "ok" for row in result.rows), [r.to_dict() for r in result.rows]
    assert all(a["io"]["level"]["shape"] == [1] for a in result.manifest["artifacts"]), result.manifest


@pytest.mark.parametrize("name,bar", [("model.onnx", 50.0), ("model-fp16.onnx", 40.0), ("model-int8.onnx", 38.0),
                                      ("model.tflite", 50.0), ("model-int8.tflite", 35.0)])
def test_the_runtime_feeds_each_format_the_level_it_is_given(level_checkpoint, name, bar):
    from edgerestore.runtime.quality import psnr

    target = "jetson" if name == "model-fp16.onnx" else "rpi4"
    bundle = exported(target, checkpoint=level_checkpoint).out_dir
    student, _ = load_student(str(level_checkpoint))
    frame = np.random.default_rng(2).integers(0, 256, SIZE + (3,)).astype(np.uint8)
    backend = create_backend("tflite" if name.endswith(".tflite") else "onnxruntime", threads=1).load(
        str(bundle / name))
    references = {level: _reference(student, frame, level) for level in (0.0, 1.0)}
    for level, other in ((0.0, 1.0), (1.0, 0.0)):
        out = backend.set_noise_level(level).infer(frame)
        assert psnr(out, references[level]) >= bar
        assert psnr(out, references[level]) > psnr(out, references[other]) + 3  # it took this level
    assert backend.info()["noise_level"] == {"setting": 1.0, "last": 1.0}


def test_tensorrt_binds_the_level_input(level_checkpoint, tmp_path):
    from edgerestore.runtime.backends.tensorrt import TensorRTBackend
    from tests.trt_standin import make_pycuda, make_tensorrt

    bundle = copy_bundle(exported("jetson", checkpoint=level_checkpoint), tmp_path / "bundle")
    trt = make_tensorrt("8.2.1")
    backend = TensorRTBackend(precision="fp16", trt=trt, cuda=make_pycuda(trt=trt), cache_dir=str(tmp_path / "c"))
    backend.load(str(bundle / "model.trt.onnx"))
    assert backend.level_input == "noise_level"
    student, _ = load_student(str(level_checkpoint))
    frame = np.random.default_rng(3).integers(0, 256, SIZE + (3,)).astype(np.uint8)
    for level in (0.0, 0.8):
        out = backend.set_noise_level(level).infer(frame)
        assert np.abs(out.astype(int) - _reference(student, frame, level)).max() <= 1


# --- settings --------------------------------------------------------------------------------------


def test_a_noise_level_setting_is_auto_or_a_number_and_anything_else_names_the_fix():
    assert parse_noise_level("auto") == "auto" and parse_noise_level(" AUTO ") == "auto"
    assert parse_noise_level("0.4") == 0.4 and parse_noise_level(0) == 0.0
    for bad in ("loud", -0.1, "nan", float("inf"), None):
        with pytest.raises(ConfigError, match="give auto or a number >= 0"):
            parse_noise_level(bad)


def test_auto_measures_each_stream_on_its_own(level_checkpoint):
    bundle = exported("rpi4", checkpoint=level_checkpoint).out_dir
    backend = create_backend("onnxruntime", threads=1).load(str(bundle / "model.onnx"))
    frames = clip_frames(21)  # a reading every 10 frames: two
    rng = np.random.default_rng(4)
    backend.level_meters.clear()
    for frame in frames:
        backend.infer(noisy(frame, 8.0, rng), stream="noisy")
        backend.infer(frame, stream="clean")
    assert backend.level_meters["noisy"].level > 0.5 > backend.level_meters["clean"].level
    # a reset stream starts afresh: two draws of one picture must not read as a still scene's noise
    backend.reset("noisy")
    assert "noisy" not in backend.level_meters and "clean" in backend.level_meters
    backend.reset_all()
    assert backend.level_meters == {}


def test_restore_and_the_service_config_take_the_level(level_checkpoint, tmp_path):
    from edgerestore.runtime.config import load_config

    image = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(image), clip_frames(1)[0][:, :, ::-1])
    result = invoke_cli("restore", image, tmp_path / "out.png", "--model", level_checkpoint, "--noise-level", "0.5", "-q")
    assert "noise level: 0.5" in result.stdout and "nothing to measure" not in result.stderr
    auto = invoke_cli("restore", image, tmp_path / "auto.png", "--model", level_checkpoint, "-q")
    assert "noise level: auto" in auto.stdout and "--noise-level N" in auto.stderr  # one picture: say how
    bad = invoke_cli("restore", image, tmp_path / "out2.png", "--noise-level", "loud", check=False)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "give auto or a number" in bad.stderr
    config = tmp_path / "config.toml"
    config.write_text('[model]\nnoise_level = 0.3\n')
    assert load_config(str(config)).model.noise_level == 0.3
    config.write_text('[model]\nnoise_level = "loud"\n')
    with pytest.raises(ConfigError, match="noise_level"):
        load_config(str(config))


def test_noise_level_measures_a_clip_and_refuses_a_still_picture(tmp_path):
    result = invoke_cli("noise-level", CLIP, "--frames", 12)
    level = float(result.stdout.split()[2])
    assert 0.0 <= level < 0.3 and "--noise-level %.2f" % level in result.stdout
    import cv2

    still = tmp_path / "still.png"
    cv2.imwrite(str(still), clip_frames(1)[0])
    bad = invoke_cli("noise-level", still, check=False)
    assert bad.returncode != 0 and "give a camera or a video" in bad.stderr


def test_a_training_sample_gets_the_level_the_meter_would_read(data_dir, tmp_path):
    """Synthetic crops: the meter's reading between the crop and a second draw of its degradation
    (compression included); clean crops 0; real pairs their fine error; other students nothing."""
    from edgerestore.distill import data as D
    from tests.distill_helpers import small_images

    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=2)])
    noisy = {"base": "noise", "gaussian_sigma": [8, 8], "poisson_peak": [0, 0], "jpeg_prob": 0, "h264_prob": 0}
    for degradation, expected in ((noisy, 0.8), ("none", 0.0)):
        renderer = D.Renderer(items, degradation)
        spec = D.train_spec(items, 0, 64, seed=3)
        assert renderer.sample(spec)["level"] == 0.0  # only a level student's trainer asks
        renderer.levels = True
        sample = renderer.sample(spec)
        second = renderer.degraded(spec, noise_draw=1)
        assert not np.array_equal(second, sample["degraded"]) or expected == 0.0
        assert sample["level"] == pytest.approx(expected, abs=0.1)
    jpeg = D.Renderer(items, dict(noisy, jpeg_prob=1, jpeg_quality=[30, 30]))
    jpeg.levels = True
    assert jpeg.sample(spec)["level"] < 0.6  # compression takes noise away, and the level says so
