"""The FFDNet teacher: MatConvNet's space-to-depth order, and the real weights denoise real camera noise."""

import numpy as np
import pytest
import torch

from edgerestore.distill.config import TeacherSection
from edgerestore.distill.teacher import create_teacher
from edgerestore.models.ffdnet import FFDNet, fold, unfold
from edgerestore.runtime.quality import psnr


def test_fold_is_matconvnets_order_and_unfold_inverts_it():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    y = fold(x)
    assert y.shape == (1, 8, 2, 3)
    # colour 0: offsets (0,0), (1,0), (0,1), (1,1); then colour 1
    assert y[0, 1, 0, 0] == x[0, 0, 1, 0] and y[0, 2, 0, 0] == x[0, 0, 0, 1] and y[0, 4, 0, 0] == x[0, 1, 0, 0]
    assert torch.equal(unfold(y), x)


def test_odd_sizes_come_back_the_same_size():
    model = FFDNet(channels=8, layers=3)
    assert model(torch.rand(1, 3, 33, 21)).shape == (1, 3, 33, 21)


def test_real_weights_denoise_a_real_noisy_crop_as_a_module_teacher(shared_dir):
    from edgerestore.benchmarks.evalset import default_polyu_dir, load_polyu_heldout

    weights = shared_dir / "teachers" / "ffdnet_color.pth"
    if not weights.is_file() or default_polyu_dir() is None:
        pytest.skip("the FFDNet weights or the PolyU pairs are absent from ../shared")
    section = TeacherSection(spec="module:edgerestore.models.ffdnet:ffdnet", weights=str(weights), kwargs={"sigma": 10})
    teacher = create_teacher(section)
    pair = load_polyu_heldout(default_polyu_dir())[0]
    noisy, clean = pair.degraded[:160, :160], pair.clean[:160, :160]
    x = torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None].float() / 255.0
    out = (teacher.outputs(x)[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    assert psnr(out, clean) > psnr(noisy, clean) + 1.0
