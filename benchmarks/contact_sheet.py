"""A contact sheet of real blurry photos (no ground truth) restored by each model, at 100 % crops.

    python benchmarks/contact_sheet.py                              # the shipped presets on ircnn_blurry
    python benchmarks/contact_sheet.py nano runs/x/student.pt --images DIR --out sheet.jpg

Rows are photos (a centre crop of ``--crop`` pixels, not resized: what a person sees at 100 %),
columns the input and each model's output. The photos are the IRCNN real camera-shake test images
(research use; ``../shared/data/real_blur/ircnn_blurry``), so the sheet is for looking, not scoring.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edgerestore.benchmarks.evalset import default_gopro_dir, read_rgb  # noqa: E402
from edgerestore.codecinput import file_codec  # noqa: E402
from edgerestore.runtime.compose import side_by_side, stack_rows  # noqa: E402
from edgerestore.runtime.restore import load_backend  # noqa: E402
from edgerestore.runtime.sinks.images import write_image  # noqa: E402
from edgerestore.weights import shipped_presets  # noqa: E402

DEFAULT_PHOTOS = ("set1_Blurry1_1.jpg", "set1_Blurry3_5.jpg", "set3_boat.jpg", "set3_fountain1_blurry.jpg",
                  "set3_postcard.jpg")


def default_images():
    gopro = default_gopro_dir()
    return os.path.join(os.path.dirname(gopro), "ircnn_blurry") if gopro else None


def centre_crop(image, size):
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    ch, cw = ch - ch % 4, cw - cw % 4
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[top:top + ch, left:left + cw])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="presets, .pt or .onnx (default: the shipped presets)")
    parser.add_argument("--images", default=None, help="a folder of photos (default: the shared ircnn_blurry)")
    parser.add_argument("--photos", nargs="*", default=None, help="file names in --images (default: five fixed ones)")
    parser.add_argument("--crop", type=int, default=256, help="centre crop size in pixels (default 256)")
    parser.add_argument("--out", default="docs/real_blur_contact_sheet.jpg")
    parser.add_argument("--noise-level", default="0",
                        help="what a model with a noise-level input is given: a number for every photo, or 'camera': "
                             "a held-out PolyU photo's camera level, as student_quality.py gives it (default 0)")
    args = parser.parse_args()
    folder = args.images or default_images()
    if not folder or not os.path.isdir(folder):
        parser.error("no photos: pass --images DIR (the shared ircnn_blurry folder was not found)")
    names = args.photos or [n for n in DEFAULT_PHOTOS if os.path.isfile(os.path.join(folder, n))]
    if not names:
        parser.error("none of the photos exists in %s; name some with --photos" % folder)
    models = args.models or [m for m in ("pico", "nano", "nano-fast", "small") if m in shipped_presets()]
    backends = [load_backend(m) for m in models]
    labels = ["input"] + [os.path.basename(os.path.dirname(m)) if m.endswith(".pt") else m for m in models]
    cameras = None
    if args.noise_level == "camera":
        from student_quality import polyu_camera_levels

        cameras = polyu_camera_levels(os.path.dirname(os.path.abspath(folder)))
    rows = []
    for name in names:
        path = os.path.join(folder, name)
        crop = centre_crop(read_rgb(path), args.crop)
        level = cameras[os.path.splitext(name)[0]] if cameras is not None else float(args.noise_level)
        codec = file_codec(path)  # a JPEG's quality, as the runtime reads it, for a model with a codec input
        outputs = [crop] + [backend.set_noise_level(level).infer(crop, codec=codec) for backend in backends]
        rows.append(side_by_side(outputs, labels))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = stack_rows(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_image(args.out, sheet)
    print("wrote %s (%dx%d): %s x %s" % (args.out, sheet.shape[1], sheet.shape[0], ", ".join(names), ", ".join(labels)))


if __name__ == "__main__":
    main()
