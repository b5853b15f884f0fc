"""Write one image, or a folder of numbered PNGs (``frame_000000.png``...). Python 3.6-safe."""

import os

from edgerestore.errors import UnsupportedInputError
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.uri import IMAGE_SUFFIXES


def write_image(path, image):
    """Write an RGB uint8 image; the suffix picks the format. Raises a one-line error on failure."""
    import cv2

    suffix = os.path.splitext(path)[1].lower()
    ok, data = cv2.imencode(suffix, image[:, :, ::-1])
    if not ok:
        raise UnsupportedInputError("cannot encode an image as %s — use .png or .jpg" % suffix)
    tmp = path + ".part"
    data.tofile(tmp)
    os.replace(tmp, path)  # never a half-written image under the final name


class ImageFileSink(Sink):
    """``out.png`` takes a single frame; a folder takes every frame (``names`` can set file names)."""

    name = "images"

    def __init__(self, uri, names=None, **_):
        self.path = uri.location
        self.names = names
        self.single = os.path.splitext(self.path)[1].lower() in IMAGE_SUFFIXES
        if self.single:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                os.makedirs(parent)
        elif not os.path.isdir(self.path):
            os.makedirs(self.path)
        self.frames = 0

    def write(self, frame):
        if self.single:
            if self.frames:
                raise UnsupportedInputError(
                    "%s is a single image but the input has several frames — give a folder or a .mp4"
                    % self.path
                )
            target = self.path
        else:
            name = self.names[frame.index] if self.names else "frame_%06d.png" % frame.index
            target = os.path.join(self.path, name)
        write_image(target, frame.image)
        self.frames += 1
