"""Distillation building blocks: config, schedule, data, losses, teachers and their cache."""

import math

import numpy as np
import pytest
import torch

from edgerestore.distill import data as D
from edgerestore.distill.config import DistillConfig, load_config, resume_differences
from edgerestore.distill.losses import HARM_FLOOR, DistillLoss, charbonnier, frequency_loss, harm_loss, ms_ssim
from edgerestore.distill.teacher import (
    TeacherCache,
    create_teacher,
    fill_targets,
    open_cache,
    parse_spec,
)
from edgerestore.distill.trainer import lr_at
from edgerestore.errors import ConfigError, InputNotFoundError, UnknownNameError
from tests.distill_helpers import gopro_layout, small_images

# --------------------------------------------------------------------------- config


def test_config_layers_file_options_and_overrides(tmp_path):
    (tmp_path / "run.yaml").write_text("student: {preset: small}\noptim: {lr: 0.001, warmup: 50}\n")
    config = load_config(tmp_path / "run.yaml", {"train.steps": 123, "optim.warmup": None},
                         ["loss.ms_ssim=0.2", "data.degradation={base: mild, gaussian_sigma: [2, 8]}"])
    assert config.student.preset == "small" and config.optim.lr == 1e-3 and config.optim.warmup == 50
    assert config.train.steps == 123 and config.loss.ms_ssim == 0.2
    assert config.data.degradation == {"base": "mild", "gaussian_sigma": [2, 8]}
    (tmp_path / "run.toml").write_text('[train]\nsteps = 7\n[teacher]\nspec = "none"\n')
    assert load_config(tmp_path / "run.toml").train.steps == 7


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown key.*lrr.*valid: lr"),
    ("optimiser.lr=1", "unknown config section 'optimiser'"),
    ("loss.pixel=l2", "loss.pixel='l2'; choose one of: charbonnier, l1"),
    ("train.steps=abc", "train.steps='abc' is not a valid int"),
    ("data.patch=0", "data.patch must be > 0"),
    ("data.crop=64", r"data.crop \(64\) must be >= data.patch \(128\)"),
    ("data.align=5", r"data.align=5 must be >= 1 and divide data.patch \(128\)"),
    ("steps=3", "must be section.key"),
])
def test_bad_config_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, None, [override])


def test_resume_ignores_only_harmless_changes():
    saved = DistillConfig()
    harmless = load_config(None, {"data.workers": 3, "train.val_every": 7})
    assert resume_differences(saved, harmless) == []
    changed = load_config(None, {"optim.lr": 0.1, "train.steps": 5})
    assert [d.split(" ")[0] for d in resume_differences(saved, changed)] == ["optim.lr", "train.steps"]


def test_learning_rate_warms_up_then_follows_a_cosine():
    optim = DistillConfig().optim
    optim.lr, optim.min_lr, optim.warmup = 1e-3, 1e-5, 10
    lrs = [lr_at(step, 110, optim) for step in range(110)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # never rises after warm-up
    assert lrs[60] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5, rel=1e-6)  # half-way down the cosine
    assert lrs[-1] < 2e-5
    optim.schedule = "constant"
    assert lr_at(100, 110, optim) == 1e-3


# --------------------------------------------------------------------------- data


def test_folders_of_images_pairs_and_videos(data_dir, real_clip, tmp_path):
    images = small_images(data_dir, tmp_path / "images", count=3)
    pairs = gopro_layout(data_dir, tmp_path / "gopro")
    items, counts = D.load_items([images, pairs, real_clip], video_stride=6, video_max_frames=4)
    assert counts == {"images": 3, "pairs": 2, "videos": 1, "frames": 4, "unpaired_ignored": 0, "excluded": 0}
    paired = [i for i in items if i.paired]
    assert [i.name for i in paired] == ["Flower/blur/000001.png", "Istanbul/blur/000001.png"]
    assert paired[0].clean.shape == paired[0].degraded.shape and paired[0].clean.dtype == np.uint8
    frames = [i for i in items if i.name.startswith("realshort.mp4#")]
    assert [i.name for i in frames] == ["realshort.mp4#0", "realshort.mp4#6", "realshort.mp4#12", "realshort.mp4#18"]
    assert len({i.group for i in frames}) == 1 and frames[0].clean.shape == (240, 320, 3)
    # the flat naming of ../shared/data/real_blur/gopro_pairs pairs up too
    flat, counts = D.load_items([data_dir / "real_blur" / "gopro_pairs"])
    assert counts["pairs"] == 2 and all(i.paired for i in flat)


def test_empty_or_missing_data_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(InputNotFoundError, match="has no images or videos"):
        D.load_items([tmp_path / "empty"])
    with pytest.raises(InputNotFoundError, match="does not exist"):
        D.load_items([tmp_path / "nowhere"])


def test_validation_split_is_fixed_by_the_seed(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=5)])
    train, val = D.split_items(items, 2, seed=0)
    assert len(train) == 3 and len(val) == 2 and not {i.key for i in train} & {i.key for i in val}
    again = D.split_items(items, 2, seed=0)[1]
    assert [i.key for i in again] == [i.key for i in val]
    others = [tuple(i.key for i in D.split_items(items, 2, seed=s)[1]) for s in range(1, 6)]
    assert any(o != tuple(i.key for i in val) for o in others)


def test_samples_are_a_pure_function_of_seed_and_index(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=3)])
    renderer = D.Renderer(items, "mild")
    spec = D.train_spec(items, 5, 48, seed=1)
    assert spec == D.train_spec(items, 5, 48, seed=1) and spec != D.train_spec(items, 6, 48, seed=1)
    a, b = renderer.sample(spec), renderer.sample(spec)
    assert a["key"] == b["key"] and np.array_equal(a["degraded"], b["degraded"])
    assert a["degraded"].shape == a["clean"].shape == (48, 48, 3)
    assert not np.array_equal(a["degraded"], a["clean"])
    other_seed = D.Spec(spec.item, spec.top, spec.left, spec.height, spec.width, spec.seed + 1)
    assert renderer.key(other_seed) != a["key"]
    assert D.Renderer(items, "strong").key(spec) != a["key"]  # the degradation is part of the key


def test_pool_patches_keep_inputs_and_targets_aligned(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=2)])
    renderer = D.Renderer(items, "none")  # degraded == clean: any misalignment shows
    pool = D.Pool(4)
    for n in range(4):
        sample = renderer.sample(D.train_spec(items, n, 48, 0))
        sample["n"] = n
        sample["teacher"] = 255 - sample["clean"]
        pool.put(sample)
    batch = pool.draw(np.random.default_rng(0), 16, 32, augment=True, with_teacher=True)
    assert batch["degraded"].shape == (16, 32, 32, 3) and batch["teacher"].dtype == np.uint8
    assert np.array_equal(batch["degraded"], batch["clean"])
    assert np.array_equal(255 - batch["teacher"], batch["clean"])
    again = pool.draw(np.random.default_rng(0), 16, 32, augment=True, with_teacher=True)
    assert np.array_equal(again["clean"], batch["clean"])


def _block_phase(images: np.ndarray) -> int:
    """Which column phase (mod 8) has the strongest jumps between neighbours: JPEG's block edges."""
    x = images.astype(np.float32)
    jumps = (np.abs(np.diff(x, axis=-2)).mean(axis=tuple(range(x.ndim - 3)) + (-3, -1))
             + np.abs(np.diff(x, axis=-3)).mean(axis=tuple(range(x.ndim - 3)) + (-2, -1)))  # columns + rows
    return int(np.argmax([jumps[p::8].mean() for p in range(8)]) + 1) % 8  # the jump after pixel 8k-1


def test_align_puts_crops_and_patches_on_the_codec_grid(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=1, side=128)])
    jpeg = {"base": "compression", "jpeg_prob": 1.0, "h264_prob": 0.0, "jpeg_quality": [10, 10]}
    spec = D.Spec(0, 13, 13, 96, 96, 3)  # near the corner: less than MARGIN above and left of it
    loose, aligned = D.Renderer(items, jpeg), D.Renderer(items, jpeg, align=8)
    assert _block_phase(loose.degraded(spec)[None]) == 3  # the grid started at the image's corner, 13 px off
    assert _block_phase(aligned.degraded(spec)[None]) == 0
    assert loose.key(spec) != aligned.key(spec)
    pool = D.Pool(1)
    sample = aligned.sample(spec)
    sample["n"] = 0
    pool.put(sample)
    for align, phases in ((8, {0}), (1, set(range(8)))):
        seen = {_block_phase(pool.draw(np.random.default_rng(seed), 1, 48, augment=True, with_teacher=False,
                                       align=align)["degraded"]) for seed in range(40)}
        assert seen <= phases and (align == 8 or len(seen) > 3)


def test_stream_shards_samples_across_processes(data_dir, tmp_path):
    items, _ = D.load_items([small_images(data_dir, tmp_path / "images", count=3)])
    renderer = D.Renderer(items, "noise")
    single = [s["k"] for s in D.sample_stream(renderer, 48, 0, 0, 6, 0, 1, workers=0)]
    rank0 = [s["k"] for s in D.sample_stream(renderer, 48, 0, 0, 3, 0, 2, workers=0)]
    rank1 = [s["k"] for s in D.sample_stream(renderer, 48, 0, 0, 3, 1, 2, workers=0)]
    assert single == [0, 1, 2, 3, 4, 5] and rank0 == [0, 2, 4] and rank1 == [1, 3, 5]
    resumed = [s["n"] for s in D.sample_stream(renderer, 48, 0, 4, 2, 1, 2, workers=0)]
    assert resumed == [4, 5]
    # a background worker yields the same samples in the same order
    with_worker = list(D.sample_stream(renderer, 48, 0, 0, 3, 0, 1, workers=1))
    in_process = list(D.sample_stream(renderer, 48, 0, 0, 3, 0, 1, workers=0))
    assert [s["key"] for s in with_worker] == [s["key"] for s in in_process]
    assert all(np.array_equal(a["degraded"], b["degraded"]) for a, b in zip(with_worker, in_process))


# --------------------------------------------------------------------------- losses


def test_losses_behave():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert 1.0 > ms_ssim(x, noisy).item() > ms_ssim(x, noisier).item()
    assert frequency_loss(x, x).item() == 0.0 and frequency_loss(x, noisy) < frequency_loss(x, noisier)
    assert charbonnier(x, x, 1e-3).item() == pytest.approx(1e-3)
    section = DistillConfig().loss
    section.ms_ssim, section.freq = 0.5, 0.1
    loss = DistillLoss(section, with_teacher=True)
    assert loss.active == ["gt", "teacher", "ms_ssim", "freq"]
    student = noisy.clone().requires_grad_(True)
    total, terms = loss(student, x, noisier)
    assert set(terms) == {"gt", "teacher", "ms_ssim", "freq"} and math.isclose(total.item(), sum(terms.values()), rel_tol=1e-5)
    total.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    assert DistillLoss(section, with_teacher=False).active == ["gt", "ms_ssim", "freq"]


def test_harm_term_counts_only_the_db_an_output_loses_against_its_own_input():
    torch.manual_seed(0)
    clean = torch.rand(3, 3, 32, 32)
    degraded = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    worse = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    assert harm_loss(degraded, clean, degraded).item() == 0.0  # the identity loses nothing
    assert harm_loss(clean, clean, degraded).item() == 0.0  # improving costs nothing
    # every crop made worse: the mean dB lost, as PSNR measures it
    lost = [10 * math.log10(((w - c) ** 2).mean().item() + HARM_FLOOR) - 10 * math.log10(((d - c) ** 2).mean().item() + HARM_FLOOR)
            for w, c, d in zip(worse, clean, degraded)]
    assert harm_loss(worse, clean, degraded).item() == pytest.approx(sum(lost) / 3, rel=1e-4)
    assert 5.0 < harm_loss(worse, clean, degraded).item() < 6.5
    # one crop of three made worse: only it counts; a margin asks for a gain beyond zero, so the
    # crop returned as it came counts too, and the crop made clean (far more than 0.5 dB) does not
    mixed = torch.stack([worse[0], clean[1], degraded[2]])
    assert harm_loss(mixed, clean, degraded).item() == pytest.approx(lost[0] / 3, rel=1e-4)
    assert harm_loss(mixed, clean, degraded, margin=0.5).item() == pytest.approx((lost[0] + 0.5 + 0.5) / 3, rel=1e-4)
    # a clean input returned unchanged costs nothing; returned with an error it counts from the floor
    assert harm_loss(clean, clean, clean).item() == 0.0
    assert harm_loss(clean + 1e-2, clean, clean).item() == pytest.approx(10 * math.log10((1e-4 + HARM_FLOOR) / HARM_FLOOR), rel=1e-4)
    section = DistillConfig().loss
    section.harm = 0.01
    loss = DistillLoss(section, with_teacher=False)
    assert loss.active == ["gt", "harm"]
    student = worse.clone().requires_grad_(True)
    total, terms = loss(student, clean, degraded=degraded)
    assert terms["harm"] == pytest.approx(0.01 * sum(lost) / 3, rel=1e-4)
    total.backward()
    assert torch.isfinite(student.grad).all()
    with pytest.raises(ValueError, match="degraded="):
        loss(student, clean)


# --------------------------------------------------------------------------- teachers and cache


def test_teacher_specs(tmp_path):
    assert parse_spec("restormer:/w/x.pth") == ("restormer", "/w/x.pth")
    with pytest.raises(UnknownNameError, match="unknown teacher 'resnet'; choose one of"):
        parse_spec("resnet:x")
    section = DistillConfig().teacher
    section.spec = "module:torch.nn:Identity"
    teacher = create_teacher(section)
    x = torch.rand(2, 3, 20, 28)
    assert torch.equal(teacher.outputs(x), x) and teacher.calls == 2
    assert teacher.sha256 == create_teacher(section).sha256
    section.spec, section.kwargs = "module:edgerestore.models.restormer:restormer", {"dim": 8, "num_blocks": [1, 1, 1, 1]}
    assert create_teacher(section).model.config.dim == 8
    section.spec = "module:edgerestore.nowhere:f"
    with pytest.raises(ConfigError, match="cannot import teacher factory"):
        create_teacher(section)
    section.spec = "restormer"
    with pytest.raises(ConfigError, match="needs its weights"):
        create_teacher(section)


def test_cache_stores_outputs_and_inputs_keyed_by_teacher(tmp_path):
    section = DistillConfig().teacher
    section.spec = "module:torch.nn:Identity"
    teacher = create_teacher(section)
    cache = open_cache(teacher, str(tmp_path / "cache"))
    assert cache.folder == tmp_path / "cache" / teacher.sha256[:16]
    assert (cache.folder / "teacher.json").is_file()
    rng = np.random.default_rng(0)
    samples = [{"key": "k%d" % i, "degraded": rng.integers(0, 255, (24, 24, 3), dtype=np.uint8), "teacher": None}
               for i in range(5)]
    assert fill_targets(teacher, cache, samples, batch=2) == 5 and teacher.calls == 5
    degraded, output = cache.get("k3")
    assert np.array_equal(degraded, samples[3]["degraded"])
    assert np.array_equal(output, samples[3]["degraded"])  # the identity teacher, to 8 bits
    assert len(cache) == 5 and cache.get("missing") is None
    assert TeacherCache.under(tmp_path / "cache", "0" * 64).get("k3") is None  # another teacher
    # everything cached: no teacher call
    again = [{"key": "k%d" % i, "degraded": s["degraded"], "teacher": cache.get("k%d" % i)[1]} for i, s in enumerate(samples)]
    assert fill_targets(teacher, cache, again, batch=2) == 0 and teacher.calls == 5
