"""Scale a picture to fit a screen, keeping its aspect ratio (letterbox). Python 3.6-safe."""

import numpy as np


def fit_rect(width, height, screen_w, screen_h):
    """``(x, y, w, h)`` of a ``width x height`` picture scaled to fit and centred on the screen."""
    scale = min(screen_w / float(width), screen_h / float(height))
    w = max(1, min(screen_w, int(round(width * scale))))
    h = max(1, min(screen_h, int(round(height * scale))))
    return (screen_w - w) // 2, (screen_h - h) // 2, w, h


def resize(image, w, h):
    """Area averaging when shrinking, bilinear when enlarging; no copy when the size is right."""
    if image.shape[1] == w and image.shape[0] == h:
        return image
    import cv2

    shrinking = w < image.shape[1] or h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def letterbox(image, screen_w, screen_h, out=None):
    """The picture scaled into a black ``screen_h x screen_w`` RGB canvas (``out`` is reused)."""
    x, y, w, h = fit_rect(image.shape[1], image.shape[0], screen_w, screen_h)
    if out is None or out.shape[:2] != (screen_h, screen_w):
        out = np.zeros((screen_h, screen_w, 3), np.uint8)
    elif (w, h) != (screen_w, screen_h):
        out[:] = 0
    out[y:y + h, x:x + w] = resize(image, w, h)
    return out
