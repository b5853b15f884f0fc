"""A single image, or a folder of images in name order (e.g. frames extracted from a video).

Python 3.6-safe.
"""

import os

from edgerestore.codecinput import file_codec
from edgerestore.errors import InputNotFoundError, UnsupportedInputError
from edgerestore.runtime.frames import Frame, as_rgb
from edgerestore.runtime.sources.base import Source
from edgerestore.runtime.uri import IMAGE_SUFFIXES


def read_image(path):
    """Read an image file as RGB uint8 (grayscale becomes 3 channels, alpha is dropped)."""
    import cv2
    import numpy as np

    if not os.path.isfile(path):
        raise InputNotFoundError("image %s does not exist" % path)
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise UnsupportedInputError("cannot decode %s as an image — is the file complete?" % path)
    if image.dtype != np.uint8:  # 16-bit PNG/TIFF
        image = (image / 257.0).round().astype(np.uint8)
    if image.ndim == 2:
        return as_rgb(image)
    return as_rgb(image[:, :, :3], "bgr")


class ImageSource(Source):
    """Yields each image once (or forever with ``loop``); ``fps`` only paces a live preview."""

    def __init__(self, uri, loop=False, fps=None, **_):
        path = uri.location
        self.loop = loop
        self.fps = fps or uri.param("fps", None, float)
        if os.path.isdir(path):
            self.paths = sorted(
                os.path.join(path, name) for name in os.listdir(path)
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
            )
            if not self.paths:
                raise UnsupportedInputError(
                    "folder %s holds no images (%s)" % (path, " ".join(IMAGE_SUFFIXES))
                )
        elif os.path.isfile(path):
            self.paths = [path]
        else:
            raise InputNotFoundError("input %s does not exist" % path)
        self.frame_count = None if loop else len(self.paths)
        first = read_image(self.paths[0])
        self.size = (first.shape[1], first.shape[0])
        self._first = first

    def __iter__(self):
        index = 0
        while True:
            for i, path in enumerate(self.paths):
                image = self._first if (index == 0 and i == 0) else read_image(path)
                pts = index / self.fps if self.fps else None
                # a JPEG's quality, for models with a codec input (edgerestore.codecinput)
                yield Frame(image, index, pts, discontinuity=index > 0 and i == 0, codec=file_codec(path))  # looped
                index += 1
            if not self.loop:
                return
