"""Side-by-side views with labels (preview, demo, contact sheets). Python 3.6-safe."""

import numpy as np


def label(image, text, scale=None):
    """Write ``text`` in the top-left corner of an RGB image (white on a dark band), in place."""
    import cv2

    height, width = image.shape[:2]
    scale = scale or max(0.35, min(1.0, width / 640.0))
    thickness = 1 if scale < 0.7 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, int(4 * scale))
    band_h = min(height, th + base + 2 * pad)
    band_w = min(width, tw + 2 * pad)
    image[:band_h, :band_w] = (image[:band_h, :band_w] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return image


def side_by_side(images, labels=None, gap=4):
    """Concatenate RGB images of the same height left to right, each with its label."""
    heights = set(image.shape[0] for image in images)
    if len(heights) != 1:
        raise ValueError("side_by_side needs images of one height, got %s" % sorted(heights))
    height = heights.pop()
    parts = []
    for i, image in enumerate(images):
        panel = np.array(image, dtype=np.uint8, copy=True)
        if labels:
            label(panel, labels[i])
        parts.append(panel)
        if gap and i < len(images) - 1:
            parts.append(np.zeros((height, gap, 3), np.uint8))
    return np.concatenate(parts, axis=1)


def stack_rows(rows, gap=4):
    """Stack RGB images of the same width top to bottom."""
    parts = []
    for i, row in enumerate(rows):
        parts.append(row)
        if gap and i < len(rows) - 1:
            parts.append(np.zeros((gap, row.shape[1], 3), np.uint8))
    return np.concatenate(parts, axis=0)
