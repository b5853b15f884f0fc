"""Model cards of shipped weights: what a file was trained on, under which terms, and how.

Every ``edgerestore/weights/<preset>.pt`` / ``.onnx`` ships with ``<preset>.md``, written by
``tools/ship_student.py`` from the checkpoint's recorded config; a test checks that each shipped
model has one naming every training source and its terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

# folder name (the last path parts of a data.train entry) -> (what it is, terms)
DATA_TERMS: Dict[str, Tuple[str, str]] = {
    "train": ("67 photos: 49 Wikimedia Commons photos (downsampled) and the 18 McMaster colour test images",
              "Commons photos: Creative Commons licences, many need attribution (list in the folder's "
              "ATTRIBUTION.md); McMaster: research use"),
    "train_photos": ("730 photos: BSDS500 (500), Urban100 (100, halved), Sun-Hays80, Set14, 36 CelebA-HQ faces",
                     "research use only; CelebA-HQ non-commercial research only (CC BY-NC 4.0 assets)"),
    "polyu": ("PolyU Real-World Noisy Images: real camera-noise pairs (noisy shot / mean of many shots), "
              "the benchmark's held-out scenes excluded", "non-commercial use only (PolyU licence)"),
    "set8_gopro": ("4 clean real GoPro clips of Set8 (FastDVDnet), 960x540", "research use only (Copyright GoPro 2018)"),
    "video_clean": ("clean real GoPro clips of Set8 (FastDVDnet), 960x540", "research use only (Copyright GoPro 2018)"),
    "video": ("real video clips (degraded footage)", "see the folder's ATTRIBUTION.md"),
}

UNKNOWN_TERMS = ("data not in edgerestore's table", "unknown: check the data's own licence before shipping")


def describe_source(path: str) -> Tuple[str, str, str]:
    """``(name, what, terms)`` of one ``data.train`` entry, by its folder name."""
    parts = [p for p in Path(path).parts if p not in ("..", ".")]
    for part in reversed(parts):
        if part in DATA_TERMS:
            what, terms = DATA_TERMS[part]
            return "/".join(parts[-2:]), what, terms
    return "/".join(parts[-2:]) or path, UNKNOWN_TERMS[0], UNKNOWN_TERMS[1]


def card_text(preset: str, architecture: str, macs: int, config: dict, command: str,
              quality: Optional[str] = None, note: str = "") -> str:
    """The Markdown model card of a shipped student trained with ``config`` (a run's config dict)."""
    data = config.get("data", {})
    sources = data.get("train", [])
    weights = data.get("weights") or []
    lines: List[str] = [
        "# Model card: `%s`" % preset, "",
        "- **What:** an edgerestore student (%s, %d MACs per output pixel) that restores video frames "
        "(camera-shake blur, sensor noise, compression) in real time on small boards." % (architecture, macs),
        "- **Files:** `%s.pt` (PyTorch checkpoint; its `meta` holds the whole training config) and `%s.onnx` "
        "(uint8 RGB in and out, ONNX Runtime%s%s)." % (
            preset, preset, "; a second input, float32 `noise_level` [1]: the frame's sensor-noise level, "
            "edgerestore.noiselevel" if "noise-level input" in architecture else "",
            "; another, float32 `codec` [2]: what the codec did to the frame (JPEG (100 - quality) / 50, "
            "H.264 QP / 30; edgerestore.codecinput)" if "codec input" in architecture else ""),
        "- **Weights' terms:** trained on research / non-commercial data (below): use them for research and "
        "evaluation; for a commercial product, retrain on data you may use (`recipes/restore.yaml` is the recipe).",
        "", "## Training data", "",
        "| source | share of crops | what | terms |", "|---|---|---|---|",
    ]
    total = sum(weights) if weights else 0.0
    for index, source in enumerate(sources):
        name, what, terms = describe_source(source)
        share = "%.0f %%" % (100.0 * weights[index] / total) if total else "by image count"
        lines.append("| `%s` | %s | %s | %s |" % (name, share, what, terms))
    clips = data.get("clips") or []
    for source in clips:
        name, what, terms = describe_source(source)
        share = "%.0f %% of the clips" % (100.0 * float(data.get("clip_share", 0.5)))
        lines.append("| `%s` | %s | %s | %s |" % (name, share, what, terms))
    if data.get("exclude"):
        lines.append("")
        lines.append("Left out of training (held out for evaluation): %s." % ", ".join(
            "`%s`" % p for p in data["exclude"]))
    lines += ["", "Degradation (synthesised on the clean images; real pairs are used as they are): `%s`." % (
        data.get("degradation"),), "",
        "## How it was trained", "", "```bash", command, "```", "",
        "Steps: %s, batch %s of %s px patches, teacher `%s`." % (
            config.get("train", {}).get("steps"), config.get("train", {}).get("batch"), data.get("patch"),
            config.get("teacher", {}).get("spec"))]
    if quality:
        lines += ["", "## Measured quality (images it never trained on)", "", quality.strip()]
    if note:
        lines += ["", "## Notes", "", note.strip()]
    return "\n".join(lines) + "\n"


def write_card(path, *args, **kwargs) -> Path:
    """Write :func:`card_text` to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(card_text(*args, **kwargs), encoding="utf-8")
    tmp.replace(path)
    return path
