"""A student's strength: scaling its correction in the weights, the sweep that picks it, the command."""

import numpy as np
import pytest
import torch

from edgerestore.distill import strength as S
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet


def random_student(**config):
    torch.manual_seed(1)
    model = StudentNet(StudentConfig(**config))
    with torch.no_grad():
        torch.nn.init.normal_(model.tail.weight, std=0.05)
        if model.config.filter_bases:
            for weights in model.bases.weights:
                torch.nn.init.normal_(weights.weight, std=0.5)
    return model.eval()


@pytest.mark.parametrize("config", [dict(scale=4, width=8, blocks=1, filter_bases=1),
                                    dict(scale=4, width=8, blocks=0, level_input=True)])
def test_scaling_the_residual_scales_the_correction_and_nothing_else(config):
    model = random_student(**config)
    x = torch.rand(1, 3, 32, 48)
    level = 0.4 if model.config.level_input else None
    with torch.no_grad():
        full = model(x, level=level) - x
        model.scale_residual(0.6)
        scaled = model(x, level=level) - x
    assert full.abs().max() > 1e-3
    assert torch.allclose(scaled, 0.6 * full, atol=1e-6)
    with pytest.raises(ValueError, match="between 0"):
        model.scale_residual(1.5)


def frame(subset, clean, error, residual):
    return S.Frame(subset, (clean + error).astype(np.float32), clean.astype(np.uint8), residual.astype(np.float32))


def test_the_sweep_keeps_a_correction_that_helps_and_refuses_one_that_harms():
    rng = np.random.default_rng(0)
    clean = rng.integers(40, 200, (32, 32, 3)).astype(np.float32)
    error = rng.normal(0, 4, clean.shape).round()
    helpful = [frame(s, clean, error, -error) for s in ("mild", "blur", "noise", "compression")]
    helpful.append(frame("clean", clean, 0 * error, 0 * error))
    rows = S.sweep(helpful, strengths=(1.0, 0.5))
    assert rows[0]["compression"] > rows[1]["compression"] > 0 and rows[0]["clean"] == np.inf
    assert S.pick(rows)["strength"] == 1.0

    # a correction that doubles the compression error: no strength is safe
    harmful = helpful[:3] + [frame("compression", clean, error, error), helpful[4]]
    assert S.pick(S.sweep(harmful, strengths=(1.0, 0.5))) is None

    # half of it harms, half helps: only the smaller strength leaves compressed frames no worse
    mixed = helpful[:3] + [frame("compression", clean, error, -error + 1.5 * rng.normal(0, 4, clean.shape))] + helpful[4:]
    rows = S.sweep(mixed, strengths=(1.0, 0.3))
    assert rows[0]["compression"] < 0 <= rows[1]["compression"]
    assert S.pick(rows)["strength"] == 0.3

    # clean frames below the bar rule a strength out too
    rows = [dict(strength=1.0, compression=0.1, clean=44.0), dict(strength=0.9, compression=0.1, clean=46.0)]
    assert S.pick(rows)["strength"] == 0.9 and S.pick(rows, clean_bar=47.0) is None


def test_the_command_writes_the_tuned_checkpoint_and_never_overwrites(cli, tmp_path):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for k in range(2):
        image = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (5, 5), 1.5)
        cv2.imwrite(str(photos / ("p%d.png" % k)), image)

    # a random correction harms every frame at every strength: nothing is written
    harmful = save_student(tmp_path / "harmful.pt", random_student(scale=4, width=8, blocks=0))
    out = tmp_path / "tuned.pt"
    result = cli("distill", "strength", str(harmful), "--images", str(photos), "--out", str(out), "--draws", "1",
                 check=False)
    assert result.returncode == 1 and "does no harm" in result.stderr and not out.exists()
    assert "  1.00  " in result.stdout and "  0.50  " in result.stdout and "chosen" not in result.stdout

    # a fresh student (the identity) is safe at full strength
    fresh = save_student(tmp_path / "fresh.pt", StudentNet(StudentConfig(scale=4, width=8, blocks=0)),
                         meta={"config": {"data": {"train": ["photos"]}}})
    result = cli("distill", "strength", str(fresh), "--images", str(photos), "--out", str(out), "--draws", "1")
    assert "1.00   +0.00" in result.stdout and "<- chosen" in result.stdout
    tuned, info = load_student(out)
    assert info["meta"]["strength"]["value"] == 1.0 and info["meta"]["config"] == {"data": {"train": ["photos"]}}
    again = cli("distill", "strength", str(fresh), "--images", str(photos), "--out", str(out), check=False)
    assert again.returncode != 0 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1

    # a given strength is written whatever the bars say, and shown in the table
    given = tmp_path / "given.pt"
    result = cli("distill", "strength", str(harmful), "--images", str(photos), "--out", str(given), "--draws", "1",
                 "--strength", "0.42")
    assert "0.42" in result.stdout and "<- given" in result.stdout
    assert load_student(given)[1]["meta"]["strength"]["value"] == 0.42
    bad = cli("distill", "strength", str(fresh), "--images", str(photos), "--out", str(tmp_path / "y.pt"),
              "--strength", "1.5", check=False)
    assert bad.returncode != 0 and "--strength" in bad.stderr and not (tmp_path / "y.pt").exists()

    missing = cli("distill", "strength", str(fresh), "--images", str(tmp_path / "nope"), "--out",
                  str(tmp_path / "x.pt"), check=False)
    assert missing.returncode != 0 and "not a folder of images" in missing.stderr
