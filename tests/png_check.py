"""Check a PNG by decoding it: its size in pixels and that it draws something (not one flat colour)."""

from __future__ import annotations

import io

import numpy as np


def png_pixels(data: bytes) -> np.ndarray:
    """The decoded image as a (height, width, channels) array."""
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as image:
        assert image.format == "PNG", image.format
        return np.asarray(image.convert("RGB"))


def assert_drawn_png(data: bytes, *, min_width: int = 100, min_height: int = 80) -> np.ndarray:
    """Decode ``data``; it must be at least the given size and hold more than one colour."""
    pixels = png_pixels(data)
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2, "the image is one flat colour"
    return pixels
