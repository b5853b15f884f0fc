"""Restormer: the official checkpoint format, the official code's output, config inference, tiling."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from edgerestore.errors import CheckpointError
from edgerestore.models.restormer import (
    Restormer,
    RestormerConfig,
    config_from_state_dict,
    load_restormer,
    pad_to_multiple,
    restore_image,
)


@pytest.fixture(scope="module")
def fixtures(shared_dir):
    folder = shared_dir / "fixtures" / "restormer"
    if not folder.is_dir():
        pytest.skip("Restormer fixtures absent: %s" % folder)
    return folder


def test_tiny_checkpoint_reproduces_the_official_output(fixtures):
    model = load_restormer(fixtures / "tiny_withbias.pth")
    expected_config = json.loads((fixtures / "tiny_withbias_config.json").read_text())
    assert model.config.to_dict() == expected_config  # inferred from keys and shapes alone
    io = np.load(fixtures / "tiny_withbias_io.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(io["input"])).numpy()
    assert out.shape == io["output"].shape
    assert np.abs(out - io["output"]).max() < 1e-5


def test_the_tiny_checkpoint_loads_strictly_with_its_stated_config(fixtures):
    config = RestormerConfig.from_dict(json.loads((fixtures / "tiny_withbias_config.json").read_text()))
    state = torch.load(fixtures / "tiny_withbias.pth", map_location="cpu", weights_only=True)["params"]
    model = Restormer(config)
    model.load_state_dict(state, strict=True)


def test_full_size_motion_deblurring_key_set(fixtures):
    reference = json.loads((fixtures / "motion_deblurring_state_dict.json").read_text())
    config = RestormerConfig.from_dict(reference["config"])
    with torch.device("meta"):  # 26M parameters: shapes only, no memory
        model = Restormer(config)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]
    fake = {k: torch.empty(shape, device="meta") for k, shape in reference["state_dict"].items()}
    assert config_from_state_dict(fake) == config


@pytest.mark.parametrize("config", [
    # the released denoising checkpoints: BiasFree layer norm
    RestormerConfig(dim=8, num_blocks=(1, 2, 1, 1), num_refinement_blocks=2, heads=(1, 2, 2, 4),
                    LayerNorm_type="BiasFree"),
    # dual-pixel defocus deblurring: 6 input channels and a skip convolution
    RestormerConfig(inp_channels=6, dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, dual_pixel_task=True),
    # biases everywhere, another expansion factor, gray images
    RestormerConfig(inp_channels=1, out_channels=1, dim=12, num_blocks=(2, 1, 1, 1), num_refinement_blocks=1,
                    ffn_expansion_factor=3.0, bias=True),
])
def test_other_released_variants_round_trip_through_the_official_format(config, tmp_path):
    torch.manual_seed(0)
    model = Restormer(config)
    path = tmp_path / "variant.pth"
    torch.save({"params": model.state_dict()}, path)
    assert config_from_state_dict(model.state_dict()) == config
    loaded = load_restormer(path)
    x = torch.rand(1, config.inp_channels, 24, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_truncated_file_is_a_clear_error(fixtures, tmp_path):
    data = (fixtures / "tiny_withbias.pth").read_bytes()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="is the file complete"):
        load_restormer(broken)


def test_checkpoint_of_another_architecture_names_the_mismatch(fixtures, tmp_path):
    state = torch.load(fixtures / "tiny_withbias.pth", map_location="cpu", weights_only=True)["params"]
    with pytest.raises(CheckpointError, match=r"does not match Restormer\(dim=24.*has shape"):
        other = tmp_path / "other.pth"
        torch.save({"params": state}, other)
        load_restormer(other, config=RestormerConfig(dim=24, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1))
    # a student checkpoint is not a Restormer
    from edgerestore.models.checkpoint import save_student
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    student = save_student(tmp_path / "student.pt", StudentNet(StudentConfig(width=4)))
    with pytest.raises(CheckpointError, match="student checkpoint, not Restormer"):
        load_restormer(student)
    # a dict of tensors that is not a Restormer at all
    torch.save({"params": {"conv.weight": torch.zeros(3, 3, 3, 3)}}, tmp_path / "conv.pth")
    with pytest.raises(CheckpointError, match="not a Restormer state dict"):
        load_restormer(tmp_path / "conv.pth")


def test_reflect_padding_to_a_multiple_of_8():
    x = torch.arange(2 * 3 * 13 * 10, dtype=torch.float32).reshape(2, 3, 13, 10)
    padded, size = pad_to_multiple(x)
    assert padded.shape[-2:] == (16, 16) and size == (13, 10)
    assert torch.equal(padded[..., :13, :10], x)
    assert torch.equal(padded[..., 13, :10], x[..., 11, :])  # reflected, not replicated


def test_tiles_blend_to_the_whole_frame_result():
    # Tiled inference must equal whole-frame inference for a model whose receptive field fits in
    # the discarded margin of the overlap, and be normalised everywhere (identity stays identity).
    x = torch.rand(1, 3, 53, 71)
    identity = restore_image(nn.Identity(), x, tile=24, overlap=8)
    assert identity.shape == x.shape and torch.allclose(identity, x, atol=1e-6)
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    whole = restore_image(conv, x)
    tiled = restore_image(conv, x, tile=32, overlap=16)
    assert tiled.shape == whole.shape == x.shape
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_restormer_runs_on_odd_sizes_tiled(fixtures):
    model = load_restormer(fixtures / "tiny_withbias.pth")
    x = torch.rand(1, 3, 45, 37)
    out = restore_image(model, x, tile=32, overlap=8)
    assert out.shape == x.shape and torch.isfinite(out).all()
