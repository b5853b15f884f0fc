"""Copy a trained student into edgerestore/weights as the shipped default of its preset.

    python tools/ship_student.py runs/nano/student.pt nano --command "edgerestore distill ..."

Writes ``edgerestore/weights/<preset>.pt`` (the checkpoint, with the training command and the
source run recorded in its meta), ``<preset>.onnx`` (the uint8-contract ONNX the runtime and
the demo use without torch) and ``<preset>.md`` (its model card: training data, their terms, the
recipe, and ``--quality FILE``'s measured table), and checks that the checkpoint has the preset's
architecture.
"""

import argparse
import json
from pathlib import Path

from edgerestore.export.onnx import export_onnx
from edgerestore.models.card import write_card
from edgerestore.models.checkpoint import file_sha256, load_student, save_student
from edgerestore.models.macs import macs_per_pixel
from edgerestore.models.presets import get_preset
from edgerestore.weights import WEIGHTS_DIR


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("preset")
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--note", default="", help="anything else worth keeping (data, teacher...)")
    parser.add_argument("--quality", default=None, help="a Markdown file with the measured quality, for the card")
    args = parser.parse_args()

    preset = get_preset(args.preset)
    student, info = load_student(args.checkpoint, expect=preset.config)
    meta = dict(info.get("meta") or {})
    meta.pop("train_state", None)  # a last.pt's optimizer and data state: for resuming, not for shipping
    meta.update({"trained_with": args.command, "source_sha256": file_sha256(args.checkpoint), "note": args.note})
    out = Path(WEIGHTS_DIR)
    pt = save_student(out / (args.preset + ".pt"), student, preset=args.preset, meta=meta)
    onnx_path = export_onnx(student, out / (args.preset + ".onnx"),
                            metadata={"preset": args.preset, "source_sha256": meta["source_sha256"]})
    config = meta.get("config") or {}
    if not config.get("data", {}).get("train"):
        raise SystemExit("%s records no training config (meta['config']); ship a checkpoint made by "
                         "edgerestore distill" % args.checkpoint)
    c = preset.config
    architecture = "scale %d, width %d, %d block(s)" % (c.scale, c.width, c.blocks)
    if c.context_width:
        architecture += ", context %d x %d" % (c.context_width, c.context_blocks)
    if c.filter_bases:
        architecture += ", %d filter basis(es)" % c.filter_bases
    if c.temporal:
        architecture += ", temporal"
    if c.level_input:
        architecture += ", noise-level input"
    if c.codec_input:
        architecture += ", codec input"
    quality = Path(args.quality).read_text(encoding="utf-8") if args.quality else None
    card = write_card(out / (args.preset + ".md"), args.preset, architecture, int(round(macs_per_pixel(student))),
                      config, args.command, quality, args.note)
    print(json.dumps({"pt": str(pt), "onnx": str(onnx_path), "card": str(card), "sha256": file_sha256(onnx_path)},
                     indent=2))


if __name__ == "__main__":
    main()
