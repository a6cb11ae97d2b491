"""GB 45438 5.2: visible text label on images, measured on the decoded output."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from synthgate.labeling.explicit import ExplicitOptions, labeler_for
from synthgate.labeling.explicit.render import font_path, layout
from synthgate.media import CorruptMedia, DecompressionBomb, MediaLimits, UnsupportedMedia
from tests.labeling.explicit.helpers import encode, grey, ink_box, lightness

OPTIONS = ExplicitOptions()
SIZES = [(64, 64), (64, 300), (300, 64), (257, 1000), (1920, 1080)]
MODES = [("RGB", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("P", "PNG"), ("CMYK", "TIFF"), ("I;16", "PNG")]


def _label(data: bytes, options: ExplicitOptions = OPTIONS) -> Image.Image:
    out = labeler_for("image").apply(data, "", options)
    im = Image.open(io.BytesIO(out))
    im.load()
    return im


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("mode", "fmt"), MODES, ids=lambda v: str(v))
def test_gb52_glyph_height_at_least_5_percent_every_mode_and_size(
    mode: str, fmt: str, size: tuple[int, int]
) -> None:
    out = _label(encode(grey(mode, size), fmt))
    assert out.size == size
    assert out.mode == mode, "the label must not change the image mode"
    box = ink_box(lightness(out))
    assert box is not None, "no label ink found"
    _, top, right, bottom = box
    ink_h = bottom - top + 1
    assert ink_h >= 0.05 * min(size), f"ink {ink_h}px < 5% of {min(size)}px"
    # Default position bottom-right: the ink sits in the lower right part of the frame.
    assert bottom >= size[1] * 0.5 and right >= size[0] * 0.5


@pytest.mark.parametrize(
    "position", ["top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom"]
)
def test_gb52_configurable_corner_or_edge(position: str) -> None:
    size = (400, 300)
    out = _label(encode(grey("RGB", size), "PNG"), ExplicitOptions(position=position))  # type: ignore[arg-type]
    left, top, right, bottom = ink_box(lightness(out)) or (0, 0, 0, 0)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    assert (cy < size[1] / 2) == position.startswith("top")
    if position in ("top", "bottom"):
        assert abs(cx - size[0] / 2) < size[0] * 0.1
    else:
        assert (cx < size[0] / 2) == position.endswith("left")


def _contrast(a: float, b: float) -> float:
    """WCAG contrast ratio of two sRGB-encoded lightness values."""

    def linear(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    hi, lo = max(linear(a), linear(b)), min(linear(a), linear(b))
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("style", ["plate", "outline"])
@pytest.mark.parametrize("background", ["black", "white", "noise"])
def test_gb52_legible_on_any_background(style: str, background: str) -> None:
    size = (512, 384)
    if background == "noise":
        rng = np.random.default_rng(7)
        base = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    else:
        base = Image.new("RGB", size, background)
    options = ExplicitOptions(style=style)  # type: ignore[arg-type]
    out = _label(encode(base, "PNG"), options)
    lay = layout(size[0], size[1], options)
    patch = lightness(out.crop(lay.box))
    glyph = patch[lay.foreground >= 0.9]
    behind = patch[(lay.background >= lay.background.max() * 0.99) & (lay.foreground == 0)]
    # WCAG AA for normal text: glyphs against what is directly behind them.
    assert _contrast(float(glyph.mean()), float(behind.mean())) >= 4.5


def test_gb52_pixels_outside_the_label_untouched() -> None:
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    out = np.asarray(_label(encode(base, "PNG")))
    lay = layout(300, 200, OPTIONS)
    mask = np.ones((200, 300), dtype=bool)
    left, top, right, bottom = lay.box
    mask[top:bottom, left:right] = False
    assert np.array_equal(out[mask], np.asarray(base)[mask])
    assert not np.array_equal(out[~mask], np.asarray(base)[~mask])


def test_gb52_palette_image_keeps_its_indices_outside_the_label() -> None:
    base = grey("P", (120, 90))
    out = _label(encode(base, "PNG"))
    assert out.mode == "P"
    lay = layout(120, 90, OPTIONS)
    left, top, right, bottom = lay.box
    a, b = np.asarray(base).copy(), np.asarray(out).copy()
    a[top:bottom, left:right] = b[top:bottom, left:right] = 0
    assert np.array_equal(a, b)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_gb52_every_frame_of_animation_labeled_durations_kept(fmt: str) -> None:
    durations = [100, 250, 400]
    frames = [Image.new("RGB", (160, 120), (40 * i, 60, 90)) for i in range(3)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=durations, loop=3)
    out = _label(data)
    assert getattr(out, "n_frames", 1) == 3
    seen = []
    for index in range(3):
        out.seek(index)
        out.load()  # WebP reports a frame's duration once it is decoded
        seen.append(out.info.get("duration"))
        box = ink_box(lightness(out.convert("RGB")))
        assert box is not None and box[3] - box[1] + 1 >= 0.05 * 120
    assert seen == durations
    assert out.info.get("loop") == 3


def test_gb52_jpeg_keeps_exif_icc_and_quality_tables() -> None:
    base = Image.new("RGB", (320, 240), (90, 120, 150))
    exif = Image.Exif()
    exif[0x010F] = "SynthCam"
    icc = b"\x00" * 128  # opaque to Pillow: kept byte for byte
    data = encode(base, "JPEG", quality=80, exif=exif.tobytes(), icc_profile=icc)
    out = _label(data)
    assert out.getexif()[0x010F] == "SynthCam"
    assert out.info.get("icc_profile") == icc
    src = Image.open(io.BytesIO(data))
    assert out.quantization == src.quantization  # type: ignore[attr-defined]


def test_gb52_png_keeps_text_chunks() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "gen-model-7")
    info.add_itxt("Comment", "生成说明")
    out = _label(encode(Image.new("RGB", (100, 100)), "PNG", pnginfo=info))
    assert out.text["Software"] == "gen-model-7"  # type: ignore[attr-defined]
    assert out.text["Comment"] == "生成说明"  # type: ignore[attr-defined]


def test_gb52_cjk_font_comes_from_a_package() -> None:
    path = font_path()
    assert "site-packages" in str(path) and path.suffix in (".otf", ".ttf", ".ttc")


def test_gb52_ocr_reads_the_label_back() -> None:
    import rapidocr_onnxruntime as rapidocr

    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(60, 200, (600, 800, 3), dtype=np.uint8))
    out = _label(encode(base, "PNG")).convert("RGB")
    engine = rapidocr.RapidOCR()
    result, _ = engine(np.asarray(out)[450:, 300:])
    text = "".join(item[1] for item in result or [])
    assert "人工智能生成" in text


# --- bad input: a clear error, never an unlabeled file --------------------------------------------


def test_gb52_truncated_image_is_a_clear_error() -> None:
    data = encode(Image.effect_noise((256, 256), 40).convert("RGB"), "PNG")
    with pytest.raises(CorruptMedia):
        labeler_for("image").apply(data[: len(data) // 2], "png", OPTIONS)


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_gb52_decompression_bomb_refused_before_decoding() -> None:
    with pytest.raises(DecompressionBomb):
        labeler_for("image").apply(_png_declaring(60_000, 60_000), "png", OPTIONS)
    small = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(DecompressionBomb):
        labeler_for("image").apply(small, "png", ExplicitOptions(limits=MediaLimits(max_pixels=5_000)))


@pytest.mark.parametrize("data", [b"not an image at all", encode(Image.new("RGB", (80, 80)), "BMP")])
def test_gb52_unsupported_container_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia):
        labeler_for("image").apply(data, "", OPTIONS)


@pytest.mark.parametrize("text", ["AI", "本内容由人工智能", "生成内容"])
def test_gb52_label_wording_needs_both_elements(text: str) -> None:
    from synthgate.errors import InvalidInput

    with pytest.raises(InvalidInput):
        ExplicitOptions(text=text)


def test_gb52_long_custom_label_wraps_and_keeps_the_height() -> None:
    options = ExplicitOptions(text="本图片由人工智能生成合成，仅供参考，请勿用于任何误导性用途AI生成")
    out = _label(encode(grey("RGB", (200, 400)), "PNG"), options)
    lay = layout(200, 400, options)
    assert len(lay.lines) > 1
    box = ink_box(lightness(out))
    assert box is not None and lay.ink_height >= 0.05 * 200


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("RGB", {}),
        ("RGBA", {}),
        ("L", {}),
        ("LA", {}),
        ("P", {"transparency": 3}),
        ("1", {}),
        ("I;16", {}),
    ],
)
def test_gb52_png_fast_inflate_decodes_exactly_what_pillow_decodes(mode: str, params: dict) -> None:  # type: ignore[type-arg]
    """The labeler inflates PNG data with ISA-L and lets Pillow unfilter stored blocks: the pixels,
    mode and info must be exactly those of Pillow's own decode, or labels would change content."""
    from PIL import PngImagePlugin

    from synthgate.labeling.explicit.image import _reinflated_png

    rng = np.random.default_rng(11)
    if mode == "I;16":
        im = Image.frombytes("I;16", (53, 37), rng.integers(0, 65536, (37, 53)).astype("<u2").tobytes())
    else:
        im = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), "RGBA").convert(mode)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "kept")
    source = encode(im, "PNG", pnginfo=info, **params)
    stored = _reinflated_png(source)
    assert stored is not None
    ours, theirs = Image.open(io.BytesIO(stored)), Image.open(io.BytesIO(source))
    assert ours.mode == theirs.mode and ours.tobytes() == theirs.tobytes()
    assert ours.info == theirs.info
    # Truncated or corrupt data is not repaired here: Pillow's own decode reports it.
    assert _reinflated_png(source[: len(source) // 2] + source[-12:]) is None
