"""`edgerestore demo` end to end: the real command, the shipped model, the shipped clip."""

import json

import av
import numpy as np

from tests.conftest import read_rgb


def test_demo_runs_offline_on_the_shipped_default(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, "--quiet")
    text = result.stdout
    assert "degraded (input)" in text and "restored (nano" in text and "gain" in text
    assert "FPS inference" in text
    figures = json.loads((out / "demo_metrics.json").read_text())
    assert figures["frames"] == 36 and figures["size"] == [320, 240]
    # The shipped student improves the degraded clip (both metrics, measured on every frame).
    assert figures["after"]["psnr"] > figures["before"]["psnr"]
    assert figures["after"]["ssim"] > figures["before"]["ssim"]
    assert figures["fps_inference"] > 0

    with av.open(str(out / "demo_side_by_side.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 36
    assert frames[0].shape == (240, 3 * 320 + 2 * 4, 3)  # degraded | restored | original
    sheet = read_rgb(out / "demo_contact_sheet.png")
    assert sheet.shape[1] == 3 * 320 + 2 * 4 and sheet.shape[0] >= 4 * 240
    # The panels differ: the restored middle panel is not a copy of the degraded one.
    left, middle = frames[10][:, :320].astype(int), frames[10][:, 324:644].astype(int)
    assert np.abs(left - middle).mean() > 0.5


def test_demo_with_an_unknown_model_is_a_one_line_error(cli, tmp_path):
    result = cli("demo", "--out", tmp_path, "--model", "huge", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: unknown preset 'huge'")
