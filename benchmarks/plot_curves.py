"""Training curves: validation PSNR against step for one or more runs, as a PNG.

    python benchmarks/plot_curves.py runs/nano-v2 runs/small-v2 --out docs/training_curves.png

Each run folder's ``log.csv`` gives the curve; its checkpoint's ``meta`` gives the validation
input's PSNR, drawn as a dashed line of the run's colour (the gain is the distance above it).
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_curve(run):
    steps, values = [], []
    with open(os.path.join(run, "log.csv")) as handle:
        for row in csv.DictReader(handle):
            if row.get("val_psnr"):
                steps.append(int(row["step"]))
                values.append(float(row["val_psnr"]))
    return steps, values


def input_psnr(run):
    from edgerestore.models.checkpoint import load_student

    for name in ("last.pt", "student.pt", "best.pt"):
        path = os.path.join(run, name)
        if os.path.isfile(path):
            return load_student(path)[1].get("meta", {}).get("input_psnr")
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (with log.csv)")
    parser.add_argument("--out", default="docs/training_curves.png")
    parser.add_argument("--title", default="validation PSNR (held-out crops, mild)")
    parser.add_argument("--xlabel", default="step (16 patches of 128 px)")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    for index, run in enumerate(args.runs):
        steps, values = read_curve(run)
        if not steps:
            parser.error("%s/log.csv has no validation rows yet" % run)
        color = "C%d" % index
        axis.plot(steps, values, color=color, marker=".", label=os.path.basename(os.path.normpath(run)))
        base = input_psnr(run)
        if base:
            axis.axhline(base, color=color, linestyle="--", linewidth=0.8)
    axis.set_xlabel(args.xlabel)
    axis.set_ylabel("PSNR dB (dashed: input)")
    axis.set_title(args.title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    figure.savefig(args.out)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
