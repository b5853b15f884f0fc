"""Training data at scale: degradation mixes, real noise pairs, held-out scenes, per-source weights."""

from collections import Counter

import cv2
import numpy as np
import pytest

from edgerestore.distill import data as D
from edgerestore.distill import degrade as deg
from edgerestore.distill.config import load_config
from edgerestore.errors import ConfigError
from tests.distill_helpers import small_images


@pytest.fixture(scope="module")
def clean_photo():
    from skimage import data as skdata

    return np.ascontiguousarray(skdata.astronaut()[100:164, 150:214])


def _polyu_layout(data_dir, target, scenes=("cam_1_100_desk", "cam_1_100_toy"), per_scene=2, side=64):
    """A PolyU-like folder (``noisy/NAME_i.jpg`` + ``clean/NAME_i.jpg``) cut from real photos, the
    noisy twin with real sensor-like noise."""
    photos = small_images(data_dir, target / "src", count=len(scenes) * per_scene, side=side)
    (target / "polyu" / "noisy").mkdir(parents=True)
    (target / "polyu" / "clean").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = sorted(photos.glob("*.png"))
    for n, path in enumerate(files):
        name = "%s_%d.png" % (scenes[n // per_scene], n % per_scene + 1)
        clean = cv2.imread(str(path))
        noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(target / "polyu" / "clean" / name), clean)
        cv2.imwrite(str(target / "polyu" / "noisy" / name), noisy)
    return target / "polyu"


def test_a_mix_picks_one_preset_per_seed_in_proportion(clean_photo):
    config, key = D.resolve_degradation({"mix": {"none": 0.25, "mild": 0.75}})
    assert key["mix"][0][:2] == ["none", 0.25]
    picks = Counter(
        "none" if np.array_equal(deg.degrade(clean_photo, seed, config)[0], clean_photo) else "degraded"
        for seed in range(60))
    assert 7 <= picks["none"] <= 24, picks  # 15 expected
    a, _ = deg.degrade(clean_photo, 5, config)
    b, _ = deg.degrade(clean_photo, 5, config)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("value, message", [
    ({"mix": {}}, "a mix is"),
    ({"mix": {"mild": 1}, "base": "mild"}, "a mix is"),
    ({"mix": {"mild": -1}}, "must be >= 0"),
    ({"mix": {"mild": 0}}, "at least one weight"),
    ({"mix": {"fuzzy": 1}}, "fuzzy"),
])
def test_bad_mixes_name_the_problem(value, message):
    with pytest.raises(Exception, match=message):
        D.resolve_degradation(value)


def test_validation_of_a_mix_uses_its_heaviest_component():
    config = load_config(None, None, ["data.degradation={mix: {none: 0.2, mild: 0.5, noise: 0.3}}"])
    assert D.validation_degradation(config.data) == "mild"
    config = load_config(None, None, ["data.degradation=blur", "data.val_degradation=noise"])
    assert D.validation_degradation(config.data) == "noise"


def test_noisy_clean_pairs_are_real_pairs_grouped_by_scene(data_dir, tmp_path):
    polyu = _polyu_layout(data_dir, tmp_path)
    items, counts = D.load_items([str(polyu)])
    assert counts["pairs"] == 4 and counts["images"] == 0
    assert all(item.paired for item in items)
    assert {item.group for item in items} == {"noisy/cam_1_100_desk", "noisy/cam_1_100_toy"}
    # held out whole scenes: both crops of a scene land on the same side
    train, val = D.split_items(items, 1, seed=0)
    assert {i.group for i in train}.isdisjoint({i.group for i in val})


def test_exclude_leaves_held_out_scenes_out(data_dir, tmp_path):
    polyu = _polyu_layout(data_dir, tmp_path)
    items, counts = D.load_items([str(polyu)], exclude=["*_toy_*"])
    assert counts["excluded"] == 2 and len(items) == 2
    assert all("toy" not in item.name for item in items)
    assert "2 left out by data.exclude" in D.describe_counts(counts)


def test_weights_set_each_sources_share_whatever_its_size(data_dir, tmp_path):
    big = small_images(data_dir, tmp_path / "big", count=5, side=64)
    polyu = _polyu_layout(data_dir, tmp_path)
    items, _ = D.load_items([str(big), str(polyu)])
    assert Counter(item.source for item in items) == {0: 5, 1: 4}
    sources = D.source_table(items, [1.0, 3.0])
    drawn = Counter(items[D.train_spec(items, k, 48, 0, sources).item].source for k in range(800))
    assert 140 <= drawn[0] <= 260, drawn  # 200 expected; without weights it would be ~444
    unweighted = Counter(items[D.train_spec(items, k, 48, 0).item].source for k in range(800))
    assert unweighted[0] > 380, unweighted
    with pytest.raises(ConfigError, match="every training source weight 0"):
        D.source_table(items, [0.0, 0.0])


def test_weights_are_checked_against_the_sources():
    with pytest.raises(ConfigError, match="data.weights has 1 value"):
        load_config(None, {"data.train": ["a", "b"]}, ["data.weights=[1]"])
    with pytest.raises(ConfigError, match="data.weights must be >= 0"):
        load_config(None, {"data.train": ["a"]}, ["data.weights=[-1]"])
    config = load_config(None, {"data.train": ["a", "b"]}, ["data.weights=[1, 0.5]"])
    assert config.data.weights == [1.0, 0.5]


def test_the_shipped_recipe_loads_and_holds_out_the_benchmark_scenes():
    from pathlib import Path

    from edgerestore.benchmarks.evalset import POLYU_EXCLUDE

    recipe = Path(__file__).resolve().parent.parent / "recipes" / "restore.yaml"
    config = load_config(recipe)
    assert len(config.data.weights) == len(config.data.train)
    assert sorted(config.data.exclude) == sorted(POLYU_EXCLUDE)
    D.resolve_degradation(config.data.degradation)


def test_past_the_memory_budget_images_are_read_when_used_and_samples_do_not_change(data_dir, tmp_path):
    folder = small_images(data_dir, tmp_path / "imgs", count=4, side=64)
    polyu = _polyu_layout(data_dir, tmp_path)
    eager, _ = D.load_items([str(folder), str(polyu)])
    lazy, counts = D.load_items([str(folder), str(polyu)], memory_mb=0.02)  # ~20 KB: the first image fits
    assert counts["lazy"] >= 8 and "read from disk when used" in D.describe_counts(counts)
    assert isinstance(lazy[-1].clean, D.LazyImage) and isinstance(lazy[-1].degraded, D.LazyImage)
    assert sum(np.asarray(i.clean).nbytes for i in eager) > 10 * sum(i.clean.nbytes for i in lazy[1:])
    a, b = D.Renderer(eager, "mild"), D.Renderer(lazy, "mild")
    for k in range(6):
        spec = D.train_spec(eager, k, 48, 0)
        assert spec == D.train_spec(lazy, k, 48, 0)
        sa, sb = a.sample(spec), b.sample(spec)
        assert np.array_equal(sa["clean"], sb["clean"]) and np.array_equal(sa["degraded"], sb["degraded"])
    D._CACHE.clear()
