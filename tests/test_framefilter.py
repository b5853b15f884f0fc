"""The frame filter (edgerestore.runtime.framefilter): the numpy/OpenCV runtime computes what the
torch prototypes it is written from compute, and a model file finds it beside itself."""

import numpy as np
import pytest
import torch

from edgerestore.errors import ConfigError
from edgerestore.runtime import framefilter
from tests.test_bench import _benchmark_script


def _trained_like(seed=0):
    """A blur_estimate.py Estimator (told the level) and a whitened global_filter.py FilterPredictor
    with random (not zero) weights, so that every tap and every layer counts."""
    estimate = _benchmark_script("blur_estimate")
    gf = _benchmark_script("global_filter")
    torch.manual_seed(seed)
    estimator = estimate.Estimator(level=True).eval()
    rng = np.random.default_rng(seed)
    degraded = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    predictor = gf.FilterPredictor(4, 9, precondition=gf.whitening(degraded, 9, samples=2000)).eval()
    torch.nn.init.normal_(predictor.mlp[-1].weight, std=0.01)
    return estimate, gf, estimator, predictor


def test_numpy_frame_filter_matches_the_torch_estimator_and_predictor(tmp_path):
    estimate, gf, estimator, predictor = _trained_like()
    path = framefilter.save(tmp_path / "m.filter.npz", estimator.state_dict(), predictor.state_dict(),
                            {"patch": 32, "patches": 4}, student="nano-codec")
    loaded = framefilter.FrameFilter.load(path)
    assert (loaded.patch, loaded.patches, loaded.size, loaded.student, loaded.reads) == (32, 4, 9, "nano-codec", "input")
    after = framefilter.save(tmp_path / "o.filter.npz", estimator.state_dict(), predictor.state_dict(), {"after": True})
    assert framefilter.FrameFilter.load(after).reads == "output"  # blur_estimate.py --train-after
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal(128, 40, (70, 100, 3)), 0, 255).astype(np.uint8)
    image[:, :50] = 90  # flat half: the tile choice must pick the detailed tiles, as the prototype does
    level = 0.3
    expected = np.array(estimate.frame_descriptor(estimator, image, 32, 4, level))
    got = loaded.estimate(image, level)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        taps = predictor(torch.tensor([[level] + list(expected)], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(loaded.kernel(expected, level), taps, atol=1e-5)
    assert np.abs(taps - np.eye(9)[4][:, None] * np.eye(9)[4][None]).max() > 1e-3  # not the identity
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        reference = gf.to_uint8(gf.apply(x, torch.from_numpy(taps)[None]))
    import cv2

    out = framefilter.filtered(cv2.copyMakeBorder(image, 4, 4, 4, 4, cv2.BORDER_REFLECT_101), taps)[4:-4, 4:-4]
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1  # float rounding at .5 only


def test_a_line_smear_is_described_as_the_trainer_draws_it():
    from edgerestore.distill import degrade

    for length, angle in ((0.7, 0.0), (4.0, 30.0), (9.5, 100.0), (14.0, -45.0)):
        expected = degrade.blur_descriptor(degrade.blur_moments(degrade.linear_kernel(length, angle)))
        np.testing.assert_allclose(framefilter.line_descriptor(length, angle), expected, rtol=1e-5, atol=1e-6)
    assert framefilter.line_descriptor(0.4, 10.0) == (0.0, 0.0, 0.0)
    assert framefilter.bounded(9.0, 4.0, 0.0)[0] == pytest.approx(framefilter.line_descriptor(4.0, 0.0)[0])
    assert framefilter.bounded(0.1, 20.0, 90.0) == pytest.approx((0.1, -0.1, 0.0), abs=1e-9)


def _stage(tmp_path, tile=32):
    _, _, estimator, predictor = _trained_like()
    path = framefilter.save(tmp_path / "m.filter.npz", estimator.state_dict(), predictor.state_dict(),
                            {"patch": 32, "patches": 4})
    return framefilter.MotionDeblur(framefilter.FrameFilter.load(path), tile=tile)


def _scene(shift_x=0):
    """A textured 96x128 frame; ``shift_x``: the right half moved that many pixels (a passing object)."""
    rng = np.random.default_rng(5)
    base = (rng.random((24, 40, 3)) * 255).astype(np.uint8)
    import cv2

    big = cv2.resize(base, (160, 96), interpolation=cv2.INTER_CUBIC)
    frame = np.ascontiguousarray(big[:, 16:144])
    if shift_x:
        frame[:, 64:] = big[:, 16 + 64 - shift_x:144 - shift_x]
    return frame


def test_the_motion_stage_sharpens_only_where_the_picture_moved(tmp_path):
    stage = _stage(tmp_path)
    first, still, moved = _scene(), _scene(), _scene(shift_x=6)
    restored = moved.copy()
    assert stage(first, first, "cam", 0.1) is first  # no previous frame: a still picture, left alone
    assert stage(still, still, "cam", 0.1) is still  # nothing moved
    out = stage(restored, moved, "cam", 0.1)
    assert out is not restored and stage.filtered == 1
    changed = np.abs(out.astype(int) - restored.astype(int)).max(axis=2)
    assert changed[:, 72:].mean() > 1.0  # the moving half went through a filter
    assert changed[:, :56].max() == 0  # the still half is the student's output, untouched
    stage.reset("cam")
    assert stage(restored, moved, "cam", 0.1) is restored  # after a reset the stream starts afresh


@pytest.mark.parametrize("luma", [False, True])
def test_tiles_filtered_side_by_side_equal_tiles_filtered_one_by_one(tmp_path, monkeypatch, luma):
    """The stage lays the tiles that share a filter side by side and filters them in one call: each
    tile's border keeps its neighbours out, so the frame is the one a call per tile gives."""
    first, moved = _scene(), _scene(shift_x=6)
    outs = []
    for per_call in (framefilter.CALL_TILES, 1):
        monkeypatch.setattr(framefilter, "CALL_TILES", per_call)
        stage = _stage(tmp_path, tile=16)
        stage.luma = luma
        stage(first, first, "cam", 0.1)
        outs.append(stage(moved, moved, "cam", 0.1))
        assert stage.tiles_filtered > 4
    assert not np.array_equal(outs[0], moved)
    assert np.array_equal(outs[0], outs[1])


def test_a_model_file_finds_its_frame_filter_beside_it(tmp_path):
    model = tmp_path / "nano-sharp.onnx"
    model.write_bytes(b"")
    assert framefilter.sidecar(model) is None
    (tmp_path / "nano-sharp.filter.npz").write_bytes(b"")
    assert framefilter.sidecar(model) == str(tmp_path / "nano-sharp.filter.npz")
    assert framefilter.sidecar(tmp_path / "nano-sharp.trt.onnx") == str(tmp_path / "nano-sharp.filter.npz")


def test_a_broken_frame_filter_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "x.filter.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be read"):
        framefilter.FrameFilter.load(bad)
    np.savez(tmp_path / "y.npz", a=np.zeros(1))
    with pytest.raises(ConfigError, match="not a frame-filter file"):
        framefilter.FrameFilter.load(tmp_path / "y.npz")


def test_save_refuses_states_that_are_not_the_told_level_prototypes(tmp_path):
    estimate, gf, estimator, predictor = _trained_like()
    untold = estimate.Estimator(level=False)
    with pytest.raises(ConfigError, match="--level"):
        framefilter.save(tmp_path / "a.filter.npz", untold.state_dict(), predictor.state_dict(), {})
    free = gf.FilterPredictor(4, 9)
    with pytest.raises(ConfigError, match="--precondition"):
        framefilter.save(tmp_path / "b.filter.npz", estimator.state_dict(), free.state_dict(), {})


def _smeared_pan(folder, sharp_folder, frames=5, step=6):
    """A real frame (the package's sample clip) panning ``step`` px per frame, each frame smeared along
    the pan over the whole frame interval (a box of ``step + 1`` px); the sharp frames beside it."""
    import av
    import cv2

    from tests.conftest import ROOT

    with av.open(str(ROOT / "edgerestore" / "data" / "sample" / "office_320x240.mp4")) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    big = cv2.resize(frame, (640, 480), interpolation=cv2.INTER_CUBIC)
    folder.mkdir()
    sharp_folder.mkdir()
    for k in range(frames):
        x = 40 + step * k
        sharp = big[100:292, x:x + 256]
        smeared = np.mean([big[100:292, x + d:x + d + 256].astype(np.float32)
                           for d in range(-(step // 2), step // 2 + 1)], axis=0)
        cv2.imwrite(str(folder / ("%03d.png" % k)), np.rint(smeared).astype(np.uint8)[:, :, ::-1])
        cv2.imwrite(str(sharp_folder / ("%03d.png" % k)), np.ascontiguousarray(sharp[:, :, ::-1]))


def test_restore_deblur_motion_sharpens_a_smeared_pan_and_leaves_its_first_frame(cli, tmp_path):
    """The shipped nano-codec with its filter, end to end: the frames that moved come out closer to
    the sharp ones than nano-codec alone makes them; the first frame (nothing to compare) is the same."""
    from edgerestore.runtime.quality import psnr
    from tests.conftest import read_rgb

    _smeared_pan(tmp_path / "pan", tmp_path / "sharp")
    plain = cli("restore", tmp_path / "pan", tmp_path / "plain", "--model", "nano-codec", "-q")
    staged = cli("restore", tmp_path / "pan", tmp_path / "staged", "--model", "nano-codec", "--deblur", "motion",
                 "--exposure", "1", "-q")  # each frame smeared over the whole frame interval
    assert plain.returncode == 0 and staged.returncode == 0, staged.stderr
    assert "motion deblur: 4 of 5 frame(s) moved" in staged.stdout
    gains = []
    for k in range(5):
        name = "%03d.png" % k
        sharp = read_rgb(tmp_path / "sharp" / name)
        a, b = read_rgb(tmp_path / "plain" / name), read_rgb(tmp_path / "staged" / name)
        if k == 0:
            assert np.array_equal(a, b)
            continue
        gains.append(psnr(b, sharp) - psnr(a, sharp))
    assert min(gains) > 0.2, gains


def test_deblur_motion_on_one_picture_or_a_model_without_a_filter(cli, tmp_path, gopro_pair):
    blurry, _ = gopro_pair
    result = cli("restore", blurry, tmp_path / "out.png", "--model", "nano-codec", "--deblur", "motion", check=False)
    assert result.returncode == 0
    assert "one picture has no motion to measure" in result.stderr
    result = cli("restore", blurry, tmp_path / "out2.png", "--model", "nano", "--deblur", "motion", check=False)
    assert result.returncode != 0
    assert "has no motion deblur filter" in result.stderr and "--model nano-codec" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_and_the_service_take_deblur_motion(cli, tmp_path):
    """`run --deblur motion` runs the stage; a model without a filter is one line naming the fix; the
    service's fallback chain gets the setting from its config."""
    from edgerestore.runtime.config import load_config
    from edgerestore.runtime.daemon import start_backend
    from edgerestore.runtime.jsonlog import NullLog

    _smeared_pan(tmp_path / "pan", tmp_path / "sharp")
    result = cli("run", "-i", tmp_path / "pan", "-o", "null://", "--model", "nano-codec", "--deblur", "motion", "-q")
    assert result.returncode == 0, result.stderr
    result = cli("run", "-i", tmp_path / "pan", "-o", "null://", "--model", "nano", "--deblur", "motion", check=False)
    assert result.returncode != 0 and "has no motion deblur filter" in result.stderr
    config = tmp_path / "c.toml"
    config.write_text('[model]\npath = "nano-codec"\ndeblur = "motion"\n')
    chain = start_backend(load_config(str(config)), NullLog())
    try:
        assert chain.current.frame_filter is not None
    finally:
        chain.close()


def test_an_export_bundle_carries_the_filter_and_runs_the_stage(cli, tmp_path):
    """`edgerestore export nano-codec` puts the filter in the bundle (hashed in the manifest); the
    bundle's model runs --deblur motion as the shipped one does; a tampered filter is refused."""
    import json

    bundle = tmp_path / "bundle"
    result = cli("export", "nano-codec", "--target", "cpu", "--format", "onnx", "--no-verify", "--out", bundle)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["frame_filter"] == {"source": "nano-codec.filter.npz", "file": "filter.npz"}
    assert "filter.npz" in manifest["files"]
    _smeared_pan(tmp_path / "pan", tmp_path / "sharp", frames=3)
    shipped = cli("restore", tmp_path / "pan", tmp_path / "a", "--model", "nano-codec", "--deblur", "motion", "-q")
    bundled = cli("restore", tmp_path / "pan", tmp_path / "b", "--model", bundle, "--deblur", "motion", "-q")
    assert shipped.returncode == 0 and bundled.returncode == 0, bundled.stderr
    assert "motion deblur: 2 of 3" in bundled.stdout
    for name in ("000.png", "001.png", "002.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with open(bundle / "filter.npz", "ab") as handle:
        handle.write(b"x")
    result = cli("restore", tmp_path / "pan", tmp_path / "c", "--model", bundle, "--deblur", "motion", check=False)
    assert result.returncode != 0 and "filter.npz" in result.stderr


def test_the_luma_variant_equals_the_colour_one_on_a_grey_picture(tmp_path):
    """On a grey frame every colour is the luma, so adding the luma's correction to each colour is
    filtering each colour (up to the last level's rounding)."""
    grey = [np.repeat(frame.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
            for frame in (_scene(), _scene(shift_x=6))]
    outs = []
    for luma in (False, True):
        stage = _stage(tmp_path, tile=32)
        stage.luma = luma
        stage(grey[0], grey[0], None, 0.1)
        outs.append(stage(grey[1], grey[1], None, 0.1).astype(int))
    assert np.abs(outs[0] - grey[1]).max() > 2  # it filtered
    assert np.abs(outs[0] - outs[1]).max() <= 1


def test_the_exposure_bounds_the_smear_and_bad_values_are_one_line(tmp_path):
    """Told a short exposure the stage leaves a slow tile alone (it cannot have smeared half a pixel)
    and sharpens a fast one less; an exposure outside (0, 1] is a one-line error naming the fix."""
    stage = _stage(tmp_path, tile=32)
    first, moved = _scene(), _scene(shift_x=6)
    outs = {}
    for exposure in (1.0, 0.5, 0.05):
        stage.reset()
        stage(first, first, None, 0.1)
        outs[exposure] = stage(moved, moved, None, 0.1, exposure=exposure)
    assert outs[0.05] is moved  # 6 px x 0.05 = 0.3 px: left alone
    change = dict((e, float(np.abs(outs[e].astype(int) - moved).mean())) for e in (1.0, 0.5))
    assert change[1.0] >= change[0.5] > 0.0
    assert framefilter.parse_exposure("auto") == "auto" and framefilter.parse_exposure("0.5") == 0.5
    for bad in ("0", "1.5", "fast", "-0.2"):
        with pytest.raises(ConfigError, match="0 < share <= 1"):
            framefilter.parse_exposure(bad)
