"""Lays out the visible text label for a frame size and renders it as two alpha masks.

The masks (background: plate or outline stroke; foreground: glyph fill) are mode-neutral, so one
rendering serves RGB, RGBA, L, CMYK, 16-bit and palette frames alike, and a video renders it once
for all its frames. The font comes from the ``pylopdf-fonts-zh-cn`` package (Noto Sans SC, OFL):
nothing depends on the fonts installed on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synthgate.labeling.explicit import ExplicitOptions
from synthgate.media import CorruptMedia, UnsupportedMedia

# Glyph pixels at or above this coverage count as ink when sizing the label, so the height
# requirement holds for the solid part of the strokes, not their anti-aliased fringe.
INK_THRESHOLD = 160


@lru_cache(maxsize=1)
def font_path() -> Path:
    try:
        path = Path(str(resources.files("pylopdf_fonts_zh_cn").joinpath("NotoSansSC-Regular.otf")))
    except ModuleNotFoundError as exc:  # pragma: no cover - a packaging error, not user input
        raise RuntimeError("the CJK font package pylopdf-fonts-zh-cn is not installed") from exc
    if not path.is_file():  # pragma: no cover
        raise RuntimeError(f"CJK font missing at {path}")
    return path


@lru_cache(maxsize=256)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), size)


def _meaningful(text: str) -> str:
    # Brackets and punctuation are taller or shorter than the characters that carry the label;
    # the height rule is measured on the AI and generation elements themselves.
    core = "".join(ch for ch in text if ch.isalnum())
    return core or text


@lru_cache(maxsize=512)
def ink_height(text: str, size: int) -> int:
    mask = _font(size).getmask(_meaningful(text), mode="L")
    arr = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
    rows = np.flatnonzero((arr >= INK_THRESHOLD).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _size_for_height(text: str, target: int) -> int:
    """Smallest font size whose solid ink is at least ``target`` pixels high."""
    size = max(4, int(target / 0.8))
    while size > 4 and ink_height(text, size - 1) >= target:
        size -= 1
    while ink_height(text, size) < target:
        size += 1
    return size


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    if font.getlength(text) <= max_width:
        return [text]
    lines: list[str] = []
    current = ""
    for ch in text:
        if current and font.getlength(current + ch) > max_width:
            lines.append(current)
            current = ch
        else:
            current += ch
    if current:
        lines.append(current)
    return lines


@dataclass(frozen=True)
class LabelLayout:
    box: tuple[int, int, int, int]
    """Left, top, right, bottom of the label patch inside the frame."""
    background: np.ndarray
    """Plate or outline coverage, float32 in [0, 1], shape (h, w)."""
    foreground: np.ndarray
    """Glyph coverage, float32 in [0, 1], shape (h, w)."""
    ink_height: int
    font_size: int
    lines: tuple[str, ...]


@lru_cache(maxsize=64)
def layout(width: int, height: int, options: ExplicitOptions) -> LabelLayout:
    if width < 1 or height < 1:
        raise CorruptMedia("image has no pixels")
    short = min(width, height)
    required = math.ceil(options.min_height_ratio * short)
    margin = max(1, round(short * 0.01))
    pad = max(1, math.ceil(required * 0.25))
    usable = width - 2 * margin - 2 * pad
    # Prefer a readable absolute size, but never below the ratio the standard requires.
    target = max(required, options.min_height_px)
    size = _size_for_height(options.text, target)
    if target > required and _font(size).getlength(options.text) > usable:
        size = _size_for_height(options.text, required)
    font = _font(size)
    lines = _wrap(options.text, font, usable)
    if any(font.getlength(line) > usable for line in lines):
        raise UnsupportedMedia(
            f"a {width}x{height} frame is too narrow for a label {required} px high", code="media.too_small"
        )
    stroke = max(1, round(size * 0.08)) if options.style == "outline" else 0
    line_boxes = [tuple(math.ceil(v) for v in font.getbbox(line, stroke_width=stroke)) for line in lines]
    line_height = max(b[3] for b in line_boxes) - min(b[1] for b in line_boxes)
    spacing = max(1, round(size * 0.15))
    text_w = max(b[2] - b[0] for b in line_boxes)
    text_h = line_height * len(lines) + spacing * (len(lines) - 1)
    patch_w, patch_h = text_w + 2 * pad, text_h + 2 * pad
    if patch_h > height - 2 * margin:
        raise UnsupportedMedia(f"a {width}x{height} frame is too low for the label", code="media.too_small")

    fg = Image.new("L", (patch_w, patch_h), 0)
    bg = Image.new("L", (patch_w, patch_h), 0)
    draw_fg, draw_bg = ImageDraw.Draw(fg), ImageDraw.Draw(bg)
    top0 = min(b[1] for b in line_boxes)
    for i, line in enumerate(lines):
        x = pad - line_boxes[i][0]
        y = pad - top0 + i * (line_height + spacing)
        draw_fg.text((x, y), line, font=font, fill=255)
        if stroke:
            draw_bg.text((x, y), line, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    background = np.asarray(bg, dtype=np.float32) / 255.0
    if options.style == "plate":
        background = np.full((patch_h, patch_w), options.plate_opacity, dtype=np.float32)

    pos = options.position
    if pos in ("top", "bottom"):
        left = (width - patch_w) // 2
    elif pos.endswith("left"):
        left = margin
    else:
        left = width - margin - patch_w
    top = margin if pos.startswith("top") else height - margin - patch_h
    return LabelLayout(
        box=(left, top, left + patch_w, top + patch_h),
        background=background,
        foreground=np.asarray(fg, dtype=np.float32) / 255.0,
        ink_height=ink_height(options.text, size),
        font_size=size,
        lines=tuple(lines),
    )


def blend(patch: np.ndarray, lay: LabelLayout, dark: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Composite the label over ``patch`` (h, w) or (h, w, c); returns the same dtype."""
    bg, fg = lay.background, lay.foreground
    if patch.ndim == 3:
        bg, fg = bg[..., None], fg[..., None]
    out = patch.astype(np.float32)
    out = out * (1.0 - bg) + dark * bg
    out = out * (1.0 - fg) + light * fg
    if np.issubdtype(patch.dtype, np.integer):
        info = np.iinfo(patch.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(patch.dtype)
