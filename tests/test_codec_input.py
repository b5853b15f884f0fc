"""The codec-input prototype: its strengths, the network's third input, training data, no export."""

import numpy as np
import pytest
import torch

from edgerestore import codecinput
from edgerestore.distill import data as D
from edgerestore.distill.degrade import get_preset, sample_params
from edgerestore.errors import CheckpointError
from edgerestore.export.onnx import export_onnx
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


def test_no_export_takes_a_codec_student_yet(tmp_path):
    student = StudentNet(StudentConfig(codec_input=True, **TINY)).eval()
    with pytest.raises(CheckpointError, match="codec_input student is a prototype"):
        export_onnx(student, tmp_path / "x.onnx")


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
