"""The ``blur_input`` prototype: a blur kernel's moments, what augmentation does to them, the
network's input, training samples, and the export's refusal (no runtime source knows the blur)."""

import cv2
import numpy as np
import pytest
import torch

from edgerestore.distill import data as D
from edgerestore.distill import degrade as deg
from edgerestore.errors import UnsupportedInputError
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet
from tests.distill_helpers import small_images

TINY = dict(scale=4, width=8, blocks=1, filter_bases=1)


def test_a_kernels_moments_give_its_extent_and_direction():
    assert deg.blur_moments(None) == (0.0, 0.0, 0.0)
    across, down = deg.blur_moments(deg.linear_kernel(11, 0)), deg.blur_moments(deg.linear_kernel(11, 90))
    assert across[0] > 9 and abs(across[1]) < 1e-6 and abs(across[2]) < 1e-6
    assert down == pytest.approx((across[1], across[0], 0.0), abs=1e-6)
    diagonal = deg.blur_moments(deg.linear_kernel(11, 45))
    assert diagonal[0] == pytest.approx(diagonal[1]) and abs(diagonal[2]) > 4
    size, along_x, along_diagonal = deg.blur_descriptor(across)
    assert size == pytest.approx(across[0] / deg.BLUR_UNIT) and along_x == pytest.approx(size)
    assert along_diagonal == pytest.approx(0.0, abs=1e-6)


def test_augmented_moments_follow_the_patch_as_training_flips_and_turns_it():
    impulse = np.zeros((41, 41, 1))
    impulse[20, 20] = 1.0
    kernel = deg.trajectory_kernel(9, np.random.default_rng(3)).astype(np.float64)
    blurred = cv2.filter2D(impulse[:, :, 0], -1, kernel[::-1, ::-1])[:, :, None]
    for code in range(8):  # exactly the flips and turns of Pool.draw
        piece = blurred[..., ::-1, :] if code & 4 else blurred
        piece = np.rot90(piece, code & 3, axes=(-3, -2))
        assert deg.blur_moments(piece[:, :, 0]) == pytest.approx(
            deg.augmented_moments(deg.blur_moments(blurred[:, :, 0]), code), abs=1e-9)


def test_a_grown_blur_input_starts_as_the_same_network_then_listens(tmp_path):
    torch.manual_seed(0)
    plain = StudentNet(StudentConfig(**TINY)).eval()
    with torch.no_grad():
        plain.tail.weight.normal_(0, 0.05)
    save_student(tmp_path / "plain.pt", plain)
    grown, _ = load_student(tmp_path / "plain.pt", expect=StudentConfig(blur_input=True, **TINY), grow=True)
    x = torch.rand(2, 3, 32, 32)
    blur = torch.tensor([[1.0, 0.8, 0.0], [0.3, -0.2, 0.2]])
    with torch.no_grad():
        assert torch.equal(grown(x, blur=blur), plain(x))
        grown.blur_head.normal_(0, 1.0)
        told, untold = grown(x, blur=blur), grown(x)
    assert torch.equal(untold, plain(x))
    assert not torch.allclose(told, untold)
    with pytest.raises(ValueError, match="frame-by-frame"):
        StudentNet(StudentConfig(scale=4, width=8, blocks=1, temporal=True, blur_input=True))


def test_training_samples_carry_their_blur(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=2)])
    renderer = D.Renderer(items, "mild", blurs=True)
    pool = D.Pool(8)
    blurred = 0
    for n in range(8):
        spec = D.train_spec(items, n, 48, 0)
        sample = renderer.sample(spec)
        kernel = deg.blur_kernel(deg.sample_params(deg.get_preset("mild"), spec.seed))
        assert sample["blur"] == deg.blur_moments(kernel)
        blurred += kernel is not None
        sample["n"] = n
        pool.put(sample)
    assert blurred >= 2
    batch = pool.draw(np.random.default_rng(0), 8, 32, augment=True, with_teacher=False)
    assert batch["blur"].shape == (8, 3) and batch["blur"][:, 0].max() > 0
    assert "blur" not in D.Renderer(items, "mild").sample(D.train_spec(items, 0, 48, 0))
    plain = D.Pool(2)  # samples without a blur draw as "no blur"
    for n in range(2):
        sample = D.Renderer(items, "mild").sample(D.train_spec(items, n, 48, 0))
        sample["n"] = n
        plain.put(sample)
    assert not plain.draw(np.random.default_rng(0), 4, 32, augment=True, with_teacher=False)["blur"].any()


def test_a_blur_input_student_is_not_exported(tmp_path):
    from edgerestore.export.bundle import export_bundle

    path = save_student(tmp_path / "blur.pt", StudentNet(StudentConfig(blur_input=True, **TINY)), preset=None)
    with pytest.raises(UnsupportedInputError, match="blur_input"):
        export_bundle(str(path), "cpu", tmp_path / "bundle", formats=["onnx"])
    assert not (tmp_path / "bundle").exists()
