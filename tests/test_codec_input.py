"""The codec input end to end: its strengths, the network's input, training data, every export format
fed it, what the runtime reads off a frame (an H.264 frame's QP, a JPEG's quality) and its settings."""

import numpy as np
import pytest
import torch

from edgerestore import codecinput
from edgerestore.distill import data as D
from edgerestore.distill.degrade import get_preset, sample_params
from edgerestore.errors import ConfigError
from edgerestore.export.onnx import reference_uint8
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet
from tests.distill_helpers import small_images

TINY = dict(scale=4, width=8, blocks=1, filter_bases=1, level_input=True)


def test_strengths_read_what_the_codec_did():
    assert codecinput.strengths() == (0.0, 0.0)
    assert codecinput.strengths("jpeg", 90) == pytest.approx((0.2, 0.0))
    assert codecinput.strengths("jpeg", 50) == pytest.approx((1.0, 0.0))
    assert codecinput.strengths("h264", h264_qp=30) == pytest.approx((0.0, 1.0))
    for bad in (dict(codec="jpeg", jpeg_quality=0), dict(codec="h264", h264_qp=60), dict(codec="vp9")):
        with pytest.raises(ValueError):
            codecinput.strengths(**bad)


def test_a_grown_codec_input_starts_as_the_same_network_then_listens(tmp_path):
    torch.manual_seed(0)
    plain = StudentNet(StudentConfig(**TINY)).eval()
    with torch.no_grad():
        plain.tail.weight.normal_(0, 0.05)
    save_student(tmp_path / "plain.pt", plain)
    grown, _ = load_student(tmp_path / "plain.pt", expect=StudentConfig(codec_input=True, **TINY), grow=True)
    x = torch.rand(2, 3, 32, 32)
    codec = torch.tensor([[0.6, 0.0], [0.0, 0.9]])
    with torch.no_grad():
        assert torch.equal(grown(x, level=0.2, codec=codec), plain(x, level=0.2))
        grown.codec_head.normal_(0, 1.0)
        told, untold = grown(x, level=0.2, codec=codec), grown(x, level=0.2)
    assert torch.equal(untold, plain(x, level=0.2))  # no codec given reads as an uncompressed frame
    assert not torch.allclose(told, untold)
    with pytest.raises(ValueError, match="frame-by-frame"):
        StudentNet(StudentConfig(scale=4, width=8, blocks=1, temporal=True, codec_input=True))


def test_training_samples_carry_their_codec(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=2)])
    renderer = D.Renderer(items, "compression", codecs=True)
    pool = D.Pool(6)
    seen = set()
    for n in range(6):
        spec = D.train_spec(items, n, 48, 0)
        sample = renderer.sample(spec)
        params = sample_params(get_preset("compression"), spec.seed)
        assert sample["codec"] == codecinput.of_params(params)
        seen.add(params.codec)
        sample["n"] = n
        pool.put(sample)
    assert seen == {"jpeg", "h264"}
    batch = pool.draw(np.random.default_rng(0), 8, 32, augment=True, with_teacher=False)
    assert batch["codec"].shape == (8, 2) and batch["codec"].max() > 0
    assert "codec" not in D.Renderer(items, "compression").sample(D.train_spec(items, 0, 48, 0))

    # data.codec_qp=decoded: an H.264 crop is told the QP its decoder reads back, not its CRF
    h264 = {"base": "compression", "jpeg_prob": 0.0, "h264_prob": 1.0}
    crf, decoded = D.Renderer(items, h264, codecs=True), D.Renderer(items, h264, codecs=True, codec_qp="decoded")
    spec = D.train_spec(items, 0, 48, 0)
    told, read = crf.sample(spec), decoded.sample(spec)
    assert np.array_equal(told["degraded"], read["degraded"]) and told["key"] == read["key"]
    qps = []
    decoded.degraded(spec, qps=qps)
    assert read["codec"] == codecinput.strengths("h264", h264_qp=qps[0]) != told["codec"]


def test_a_decoder_reads_each_h264_frames_qp():
    import struct

    from skimage import data

    from edgerestore.distill.degrade import h264_roundtrip

    image = np.ascontiguousarray(data.astronaut()[:128, :192])
    frames = [image, np.ascontiguousarray(np.roll(image, 2, axis=1))]
    first = {}
    for crf in (20, 32):
        qps = []
        decoded = h264_roundtrip(frames, crf, qps=qps)
        assert len(qps) == 2 and all(qp is not None for qp in qps)
        assert all(np.array_equal(a, b) for a, b in zip(decoded, h264_roundtrip(frames, crf)))  # reading changes nothing
        first[crf] = qps[0]
        assert crf - 6 <= qps[0] <= crf + 6  # an I-frame: near its CRF
    assert first[32] - first[20] > 8
    vp9 = struct.pack("@INNii", 0, 0, 0, 0, 120)
    assert codecinput.h264_qp(vp9) is None
    assert codecinput.frame_h264_qp(object()) is None  # a frame without the side data


# --- every export format takes the codec ------------------------------------------------------------


@pytest.fixture(scope="module")
def codec_checkpoint():
    from tests.export_helpers import tiny_checkpoint

    return tiny_checkpoint("tiny-codec", bases=1, level=True, codec=True)


def _clip_frame(size):
    import av

    from tests.conftest import ROOT

    with av.open(str(ROOT / "edgerestore" / "data" / "sample" / "office_320x240.mp4")) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    return np.ascontiguousarray(frame[:size[0], :size[1]])


def _reference(student, frame, codec, level=0.0):
    return reference_uint8(student, torch.from_numpy(frame)[None], level=level, codec=codec).numpy()[0]


@pytest.mark.parametrize("target", ["rpi4", "jetson"])
def test_every_format_of_a_codec_student_exports_verified(codec_checkpoint, target):
    from tests.export_helpers import exported

    result = exported(target, checkpoint=codec_checkpoint)
    assert result.rows and all(row.status == "ok" for row in result.rows), [r.to_dict() for r in result.rows]
    for artifact in result.manifest["artifacts"]:
        assert artifact["io"]["codec"]["shape"] == [2] and artifact["io"]["level"]["shape"] == [1], artifact


CODECS = ((0.0, 0.0), (0.0, 1.2), (1.0, 0.0))


@pytest.mark.parametrize("name,bar", [("model.onnx", 50.0), ("model-fp16.onnx", 40.0), ("model-int8.onnx", 36.0),
                                      ("model.tflite", 50.0), ("model-int8.tflite", 35.0)])
def test_the_runtime_feeds_each_format_the_codec_it_is_given(codec_checkpoint, name, bar):
    from edgerestore.runtime.backends import create_backend
    from edgerestore.runtime.quality import psnr
    from tests.export_helpers import SIZE, exported

    target = "jetson" if name == "model-fp16.onnx" else "rpi4"
    bundle = exported(target, checkpoint=codec_checkpoint).out_dir
    student, _ = load_student(str(codec_checkpoint))
    frame = _clip_frame(SIZE)
    backend = create_backend("tflite" if name.endswith(".tflite") else "onnxruntime", threads=1).load(
        str(bundle / name)).set_noise_level(0.3)
    references = {codec: _reference(student, frame, codec, 0.3) for codec in CODECS}
    for codec in CODECS:
        out = backend.set_codec(codec).infer(frame)
        assert psnr(out, references[codec]) >= bar
        for other in CODECS:  # it took this codec, not another
            assert other == codec or psnr(out, references[codec]) > psnr(out, references[other]) + 2
    # "auto" takes what the source read off the frame, and an uncompressed frame without it
    backend.set_codec("auto")
    assert np.array_equal(backend.infer(frame, codec=(1.0, 0.0)), backend.set_codec((1.0, 0.0)).infer(frame))
    backend.set_codec("auto")
    assert np.array_equal(backend.infer(frame), backend.set_codec("none").infer(frame))
    assert backend.info()["codec"] == {"setting": (0.0, 0.0), "last": [0.0, 0.0]}


def test_tensorrt_binds_the_codec_input(codec_checkpoint, tmp_path):
    from edgerestore.runtime.backends.tensorrt import TensorRTBackend
    from tests.export_helpers import SIZE, copy_bundle, exported
    from tests.trt_standin import make_pycuda, make_tensorrt

    bundle = copy_bundle(exported("jetson", checkpoint=codec_checkpoint), tmp_path / "bundle")
    trt = make_tensorrt("8.2.1")
    backend = TensorRTBackend(precision="fp16", trt=trt, cuda=make_pycuda(trt=trt), cache_dir=str(tmp_path / "c"))
    backend.load(str(bundle / "model.trt.onnx"))
    assert (backend.level_input, backend.codec_input) == ("noise_level", "codec")
    student, _ = load_student(str(codec_checkpoint))
    frame = _clip_frame(SIZE)
    backend.set_noise_level(0.0)
    for codec in CODECS:
        out = backend.set_codec(codec).infer(frame)
        assert np.abs(out.astype(int) - _reference(student, frame, codec)).max() <= 1


# --- what the runtime reads off a frame, and the setting ---------------------------------------------


def test_a_codec_setting_is_auto_none_or_a_codec_and_anything_else_names_the_fix():
    from edgerestore.runtime.backends.base import parse_codec

    assert parse_codec("auto") == "auto" and parse_codec(" None ") == (0.0, 0.0)
    assert parse_codec("jpeg:75") == pytest.approx((0.5, 0.0))
    assert parse_codec("h264:30") == pytest.approx((0.0, 1.0))
    assert parse_codec((0.2, 0.0)) == (0.2, 0.0)
    for bad in ("vp9:30", "jpeg:0", "jpeg:high", "h264:70", "h264", 3):
        with pytest.raises(ConfigError, match="give auto, none, jpeg:QUALITY"):
            parse_codec(bad)


def test_a_jpegs_quality_is_read_off_its_quantisation_table(tmp_path):
    import io

    import cv2
    from PIL import Image

    image = _clip_frame((64, 96))
    for quality in (5, 37, 50, 75, 95, 100):
        ok, opencv = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        pillow = io.BytesIO()
        Image.fromarray(image).save(pillow, "JPEG", quality=quality)
        assert codecinput.jpeg_quality(opencv.tobytes()) == quality
        assert codecinput.jpeg_quality(pillow.getvalue()) == quality
    ok, png = cv2.imencode(".png", image)
    assert codecinput.jpeg_quality(png.tobytes()) is None
    assert codecinput.jpeg_quality(b"\xff\xd8\xff\xd9") is None  # a JPEG without tables


def test_sources_tell_each_frame_what_its_codec_did(tmp_path):
    import cv2

    from edgerestore.runtime.sources import open_source
    from tests.conftest import ROOT

    source = open_source(str(ROOT / "edgerestore" / "data" / "sample" / "office_320x240.mp4"))
    try:
        frames = [f for _, f in zip(range(4), source)]
    finally:
        source.close()
    assert all(f.codec is not None and f.codec[0] == 0.0 and 0.0 < f.codec[1] < 51 / 30 for f in frames)
    image = _clip_frame((64, 96))
    cv2.imwrite(str(tmp_path / "a.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(tmp_path / "b.png"), image)
    for name, codec in (("a.jpg", codecinput.strengths("jpeg", 60)), ("b.png", None)):
        source = open_source(str(tmp_path / name))
        try:
            assert next(iter(source)).codec == codec
        finally:
            source.close()


def test_restore_tells_a_codec_model_what_the_input_went_through(codec_checkpoint, tmp_path):
    import cv2

    from tests.conftest import invoke_cli

    image = _clip_frame((64, 96))
    cv2.imwrite(str(tmp_path / "in.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])
    student, _ = load_student(str(codec_checkpoint))
    degraded = cv2.imread(str(tmp_path / "in.jpg"))[:, :, ::-1].copy()
    auto = invoke_cli("restore", tmp_path / "in.jpg", tmp_path / "auto.png", "--model", codec_checkpoint,
                      "--noise-level", "0", "-q")
    assert "codec: auto (last frame's strengths [1.0, 0.0])" in auto.stdout
    restored = cv2.imread(str(tmp_path / "auto.png"))[:, :, ::-1]
    assert np.abs(restored.astype(int) - _reference(student, degraded, (1.0, 0.0))).max() <= 1
    told = invoke_cli("restore", tmp_path / "in.jpg", tmp_path / "told.png", "--model", codec_checkpoint,
                      "--noise-level", "0", "--codec", "none", "-q")
    assert "codec: (0.0, 0.0)" in told.stdout
    bad = invoke_cli("restore", tmp_path / "in.jpg", tmp_path / "bad.png", "--codec", "h265:30", check=False)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "jpeg:QUALITY" in bad.stderr


def test_a_real_pair_is_told_what_the_runtime_reads_off_its_file(tmp_path):
    import cv2

    image = _clip_frame((64, 96))
    noisy = np.clip(image.astype(int) + np.random.default_rng(0).integers(-9, 10, image.shape), 0, 255).astype(np.uint8)
    for word, picture in (("noisy", noisy), ("clean", image)):
        (tmp_path / "jpeg" / word).mkdir(parents=True)
        (tmp_path / "png" / word).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "jpeg" / word / "a_1.jpg"), picture[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
        cv2.imwrite(str(tmp_path / "png" / word / "a_1.png"), picture[:, :, ::-1])
    for folder, read in (("jpeg", codecinput.strengths("jpeg", 75)), ("png", codecinput.strengths())):
        items, _ = D.load_items([str(tmp_path / folder)])
        assert len(items) == 1 and items[0].paired and items[0].codec == (read if folder == "jpeg" else None)
        renderer = D.Renderer(items, "mild", codecs=True)
        told = set()
        for k in range(6):  # half the samples as read, half told nothing (an MJPG camera's frames)
            spec = D.train_spec(items, k, 48, 0)
            sample = renderer.sample(spec)
            assert sample["component"] == "pairs"
            assert sample["codec"] == (read if spec.seed % 2 == 0 else codecinput.strengths())
            told.add(sample["codec"])
        assert told == {read, codecinput.strengths()}
