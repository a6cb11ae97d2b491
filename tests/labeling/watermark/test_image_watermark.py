"""The keyed image watermark: round trip, key separation, calibrated threshold, robustness, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from skimage import data

from synthgate.labeling.watermark import (
    NotEmbeddable,
    codecs,
    detect_image_bytes,
    parse_payload,
    union_bound_p_value,
    watermark_image_bytes,
)
from synthgate.labeling.watermark.image import COARSE_GRID, GRIDS, ImageCodec

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PAYLOAD = bytes.fromhex("5eed0000c0ffee42")


def photo(name: str = "camera", size: int | None = None) -> Image.Image:
    """A real photograph that ships inside scikit-image (no download)."""
    img = Image.fromarray(getattr(data, name)()).convert("RGB")
    return img.resize((size, size), Image.Resampling.LANCZOS) if size else img


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, "JPEG", quality=quality, subsampling=2)  # 4:2:0
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def marked() -> Image.Image:
    return ImageCodec(KEY).embed(photo(), PAYLOAD)


def test_lm5_round_trip_reads_the_payload_back(marked: Image.Image) -> None:
    original = np.asarray(photo(), dtype=np.float64)
    changed = np.asarray(marked, dtype=np.float64)
    psnr = 10 * np.log10(255.0**2 / np.mean((original - changed) ** 2))
    assert psnr >= 42.0
    found = ImageCodec(KEY).detect(marked)
    assert found.detected and found.payload == PAYLOAD.hex()
    assert found.p_value <= 1e-6
    assert found.corrected_bits is not None and found.corrected_bits <= 2


def test_lm5_without_the_key_nothing_is_read(marked: Image.Image) -> None:
    found = ImageCodec(OTHER_KEY).detect(marked)
    assert not found.detected
    assert found.payload is None
    assert found.p_value > 1e-6


def test_lm5_unmarked_images_stay_below_the_threshold_for_many_keys() -> None:
    """Empirical side of the calibration: 40 keys × 3 unmarked images, none near the 1e-6 threshold."""
    scores = []
    for seed, name in enumerate(("astronaut", "coffee", "text")):
        img = photo(name)
        for k in range(40):
            found = ImageCodec(bytes([k, seed]) * 16).detect(img)
            assert not found.detected
            scores.append(found.score)
    # Under no mark the statistic is bounded by a unit-variance sub-Gaussian: the maximum of
    # ~1e5 searched offsets stays far below the z ≈ 6.9 that p = 1e-6 needs.
    assert max(scores) < 6.0
    assert union_bound_p_value(max(scores), 4096 * 5) > 1e-6


def test_lm5_threshold_is_the_p_value_bound(marked: Image.Image) -> None:
    codec = ImageCodec(OTHER_KEY)
    strict = codec.detect(marked)
    anything = codec.detect(marked, max_p_value=1.0)  # a threshold that accepts everything
    assert not strict.detected and anything.detected
    assert union_bound_p_value(7.0, 4096) == pytest.approx(4096 * np.exp(-24.5))
    assert union_bound_p_value(-1.0, 10) == 1.0


def test_dsp18_survives_jpeg50_after_half_size_resize() -> None:
    # A 512 × 512 photo shrunk to 256 × 256 and saved at JPEG quality 50 (4:2:0). This chain is the
    # codec's weakest point: over the benchmark set it recovers the payload on 71 % of images
    # (docs/performance.md; issue 4 stays open for it: photos and text pages ≤ 512 px fail). The moon
    # is one photo where it holds; this test guards that case against regressions, it does not show
    # the target is met.
    marked = ImageCodec(KEY).embed(photo("moon"), PAYLOAD)
    small = marked.resize((256, 256), Image.Resampling.LANCZOS)
    found = ImageCodec(KEY).detect(jpeg(small, 50))
    assert found.detected
    assert found.payload == PAYLOAD.hex()


@pytest.mark.parametrize("box", [(102, 0, 512, 512), (0, 0, 512, 410), (28, 28, 484, 484)])
def test_dsp18_survives_a_20_percent_crop(marked: Image.Image, box: tuple[int, int, int, int]) -> None:
    found = ImageCodec(KEY).detect(marked.crop(box))
    assert found.detected and found.payload == PAYLOAD.hex()


def test_dsp18_survives_blur_and_brightness(marked: Image.Image) -> None:
    blurred = marked.filter(ImageFilter.GaussianBlur(1.0))
    brighter = Image.eval(marked, lambda v: min(255, int(v * 1.25)))
    for attacked in (blurred, brighter):
        found = ImageCodec(KEY).detect(attacked)
        assert found.payload == PAYLOAD.hex()


def test_lm5_flat_poster_and_white_screenshot_carry_the_mark() -> None:
    poster = Image.new("RGB", (384, 384), (200, 40, 60))
    screenshot = Image.new("RGB", (1024, 768), "white")
    draw = ImageDraw.Draw(screenshot)
    for k in range(20):
        draw.text((10, 8 + 36 * k), "Settings  ·  Account  ·  Privacy  ·  Help " * 3, fill=(0, 0, 0))
    codec = ImageCodec(KEY)
    for img in (poster, screenshot):
        found = codec.detect(jpeg(codec.embed(img, PAYLOAD), 80))
        assert found.payload == PAYLOAD.hex()


def _ui_screenshot(width: int, height: int) -> Image.Image:
    """White page, blue header, grey side bar, dense dark text (the bench's screenshot class)."""
    rng = np.random.default_rng(3)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 40), fill=(35, 90, 200))
    draw.rectangle((0, 40, width // 5, height), fill=(245, 246, 248))
    for k in range(height // 18):
        words = " ".join("".join(chr(97 + int(c)) for c in rng.integers(0, 26, 6)) for _ in range(12))
        draw.text((width // 5 + 12, 52 + 18 * k), words, fill=(20, 20, 20))
    return img


def _poster(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), (70, 150, 210))
    draw = ImageDraw.Draw(img)
    draw.rectangle((size // 8, size // 6, size // 2, size // 2), fill=(240, 200, 40))
    draw.ellipse((size // 2, size // 2, size - 20, size - 20), fill=(200, 30, 60))
    draw.text((size // 10, size // 2), "SUMMER SALE  -50%  " * 3, fill=(255, 255, 255))
    return img


def test_dsp18_flat_poster_uses_the_coarse_grid_and_survives_jpeg50_after_half_size() -> None:
    # Flat graphics take the coarse grid (chips twice as large); on the fine grid alone this chain
    # (512 px → 256 px → JPEG 50 4:2:0) left such posters at z ≈ 4 and no payload.
    codec = ImageCodec(KEY)
    marked = codec.embed(_poster(512), PAYLOAD)
    assert codec.detect(marked).details["grid"] == COARSE_GRID
    found = codec.detect(jpeg(marked.resize((256, 256), Image.Resampling.LANCZOS), 50))
    assert found.detected and found.payload == PAYLOAD.hex()
    assert found.details["grid"] == COARSE_GRID


def test_dsp18_small_text_screenshot_survives_webp_and_noise() -> None:
    # A 512 px UI screenshot (text on white) stays on the fine grid; the detector damps the text
    # strokes (content noise) so WebP 75 and noise σ = 5/255 keep the payload (both failed before).
    codec = ImageCodec(KEY)
    marked = codec.embed(_ui_screenshot(512, 512), PAYLOAD)
    buffer = io.BytesIO()
    marked.save(buffer, "WEBP", quality=75)
    noisy = np.asarray(marked, dtype=np.float32) + np.random.default_rng(7).normal(0, 5.0, (512, 512, 3))
    for attacked in (
        Image.open(io.BytesIO(buffer.getvalue())),
        Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)),
    ):
        found = codec.detect(attacked)
        assert found.detected and found.payload == PAYLOAD.hex()


@pytest.mark.parametrize("grid", GRIDS)
def test_lm5_a_forced_grid_is_used_and_found(grid: int) -> None:
    codec = ImageCodec(KEY)
    found = codec.detect(codec.embed(_poster(384), PAYLOAD, grid=grid))
    assert found.payload == PAYLOAD.hex() and found.details["grid"] == grid
    with pytest.raises(ValueError, match="grid"):
        codec.embed(_poster(384), PAYLOAD, grid=200)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
def test_lm5_other_pixel_formats_round_trip(mode: str) -> None:
    base = photo("camera")
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = base.convert(mode)
    codec = ImageCodec(KEY)
    out = codec.embed(img, PAYLOAD)
    assert out.size == img.size
    if mode != "P":  # a palette cannot hold the mark: palette input comes back as true colour
        assert out.mode == img.mode
    if mode in ("LA", "RGBA"):
        assert np.array_equal(np.asarray(out)[:, :, -1], np.asarray(img)[:, :, -1])  # alpha untouched
    assert codec.detect(out).payload == PAYLOAD.hex()


def test_lm5_too_small_images_are_reported_not_embeddable() -> None:
    tiny = Image.new("RGB", (100, 300), (128, 128, 128))
    with pytest.raises(NotEmbeddable):
        ImageCodec(KEY).embed(tiny, PAYLOAD)
    buffer = io.BytesIO()
    tiny.save(buffer, "PNG")
    result = watermark_image_bytes(buffer.getvalue(), KEY, PAYLOAD)
    assert not result.embedded and result.reason and "too small" in result.reason
    assert result.data == buffer.getvalue()
    assert not detect_image_bytes(buffer.getvalue(), KEY).detected


def test_lm5_file_level_embedding_keeps_the_format_and_is_read_by_pillow() -> None:
    buffer = io.BytesIO()
    photo("camera", 256).save(buffer, "JPEG", quality=90)
    result = watermark_image_bytes(buffer.getvalue(), KEY, PAYLOAD)
    assert result.embedded and result.format == "JPEG"
    assert Image.open(io.BytesIO(result.data)).format == "JPEG"
    assert detect_image_bytes(result.data, KEY).payload == PAYLOAD.hex()


def test_payload_parsing_and_registry() -> None:
    assert parse_payload("0x5EED0000C0FFEE42") == PAYLOAD
    for bad in ("123", "zz" * 8, "00" * 9):
        with pytest.raises(Exception, match="16 hex digits"):
            parse_payload(bad)
    assert "image" in codecs.names()
    assert isinstance(codecs.create("image", KEY), ImageCodec)
