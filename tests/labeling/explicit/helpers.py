"""Measuring a visible label on real decoded output: ink rows, never the font size we asked for."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def lightness(im: Image.Image) -> np.ndarray:
    """0..1 lightness of a frame in any mode (16-bit kept at full precision)."""
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.float64) / 65535.0
    if im.mode == "CMYK":
        im = im.convert("RGB")
    if im.mode in ("P", "PA", "RGBA", "LA"):
        im = im.convert("RGBA")
        rgba = np.asarray(im, dtype=np.float64) / 255.0
        return (rgba[..., :3] @ np.array([0.299, 0.587, 0.114])) * rgba[..., 3]
    return np.asarray(im.convert("L"), dtype=np.float64) / 255.0


def ink_box(light: np.ndarray, threshold: float = 0.6) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom inclusive) of glyph pixels brighter than ``threshold``."""
    ys, xs = np.nonzero(light > threshold)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def grey(mode: str, size: tuple[int, int], level: float = 0.5) -> Image.Image:
    """A flat mid-grey canvas in ``mode``, so any bright pixel afterwards is label ink."""
    if mode == "I;16":
        return Image.fromarray(np.full((size[1], size[0]), int(level * 65535), dtype=np.uint16))
    base = Image.new("RGB", size, (int(level * 255),) * 3)
    if mode == "P":
        return base.quantize(colors=16)
    return base.convert(mode)
