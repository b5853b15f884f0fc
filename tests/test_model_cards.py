"""Every shipped weight file has a model card that names its training data and their terms."""

import pytest

from edgerestore.models.card import card_text, describe_source
from edgerestore.models.checkpoint import load_student
from edgerestore.weights import shipped_path, shipped_presets


@pytest.mark.parametrize("preset", shipped_presets())
def test_each_shipped_model_has_a_card_naming_its_data_and_terms(preset):
    card = shipped_path(preset, ".md")
    assert card, "edgerestore/weights/%s.md is missing: ship weights with tools/ship_student.py" % preset
    text = open(card, encoding="utf-8").read()
    _, info = load_student(shipped_path(preset, ".pt"))
    data = info["meta"]["config"]["data"]
    sources = data["train"] + (data.get("clips") or [])
    assert sources, "the checkpoint records no training data"
    for source in sources:
        name, _, terms = describe_source(source)
        assert "`%s`" % name in text and terms in text
    assert "## Training data" in text and "terms" in text.lower()
    assert info["meta"].get("trained_with", "") in text


def test_unknown_data_is_flagged_not_guessed():
    text = card_text("nano", "scale 2", 864, {"data": {"train": ["/somewhere/my_photos"]}, "train": {}}, "cmd")
    assert "unknown: check the data's own licence" in text and "`somewhere/my_photos`" in text




def test_the_presets_that_say_they_ship_are_the_ones_with_weights():
    from edgerestore.models.presets import PRESETS

    for name, preset in PRESETS.items():
        assert preset.shipped == (name in shipped_presets()), name
