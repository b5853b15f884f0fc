"""Small real datasets and tiny settings shared by the distillation tests."""

from pathlib import Path

import cv2
import numpy as np

# A run that takes seconds on 2 shared cores: small crops and patches, a small pool.
TINY = {
    "data.pool": 8, "data.crop": 48, "data.patch": 32, "train.batch": 4, "data.val_count": 2,
    "data.val_crop": 48, "optim.warmup": 2, "train.val_every": 10, "train.log_every": 1,
    "data.workers": 0, "data.refresh": 2, "train.threads": 1,
}


def tiny_args(**changes):
    """TINY as CLI ``--set`` arguments (``changes`` override or add keys, dots as ``__``)."""
    values = dict(TINY)
    values.update({k.replace("__", "."): v for k, v in changes.items()})
    args = []
    for key, value in values.items():
        args += ["--set", "%s=%s" % (key, value)]
    return args


def small_images(data_dir: Path, target: Path, count: int = 5, side: int = 96) -> Path:
    """``count`` real photos (Wikimedia Commons) downscaled so the short side is ``side``."""
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted((data_dir / "train" / "wikipedia").glob("*.png"))[:count]
    for i, source in enumerate(sources):
        image = cv2.imread(str(source))
        h, w = image.shape[:2]
        scale = side / float(min(h, w))
        small = cv2.resize(image, (max(side, int(round(w * scale))), max(side, int(round(h * scale)))),
                           interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target / ("img%02d.png" % i)), small)
    return target


def gopro_layout(data_dir: Path, target: Path, side: int = 96) -> Path:
    """The two real GoPro pairs, downscaled, in the GoPro layout SEQ/blur/x.png <-> SEQ/sharp/x.png."""
    base = data_dir / "real_blur" / "gopro_pairs"
    for name in ("Istanbul", "Flower"):
        for kind in ("blur", "sharp"):
            image = cv2.imread(str(base / ("%s_%s1.png" % (name, kind))))
            h, w = image.shape[:2]
            small = cv2.resize(image, (w * side // h, side), interpolation=cv2.INTER_AREA)
            folder = target / name / kind
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "000001.png"), small)
    return target


def read_log(path: Path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def mean(values):
    return float(np.mean([float(v) for v in values]))
