from __future__ import annotations

import io
import struct
import zlib

import pytest

from synthgate.labeling.implicit import AigcLabel, content_digest, read_labels, write_label
from synthgate.labeling.inspect import inspect
from synthgate.media import (
    CorruptMedia,
    DecompressionBomb,
    MediaLimits,
    MediaTooLarge,
    UnsupportedMedia,
    sniff,
)
from tests.labeling.implicit import media_factory as mf


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: mf.image("JPEG"), "jpeg"),
        (lambda: mf.image("PNG"), "png"),
        (lambda: mf.image("WEBP"), "webp"),
        (lambda: mf.image("TIFF"), "tiff"),
        (mf.animated_gif, "gif"),
        (mf.wav, "wav"),
        (mf.mp3, "mp3"),
        (mf.flac, "flac"),
        (mf.ogg, "ogg"),
        (mf.video, "mp4"),
        (lambda: mf.video("matroska"), "mkv"),
        (mf.docx, "docx"),
        (lambda: b"<!DOCTYPE html><html></html>", "html"),
        (lambda: "# 标题".encode(), "markdown"),
    ],
)
def test_sniff_by_content(make: object, kind: str) -> None:
    assert sniff(make()) == kind  # type: ignore[operator]


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02\x03\xff\xfe" * 10, b"PK\x03\x04not a docx at all"])
def test_unsupported_input_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia) as info:
        write_label(data, AigcLabel())
    assert info.value.status_code == 415


@pytest.mark.parametrize(
    "make",
    [
        lambda: mf.image("PNG"),
        lambda: mf.image("JPEG"),
        mf.wav,
        mf.animated_gif,
        lambda: mf.image("WEBP"),
        lambda: mf.image("TIFF"),
    ],
)
def test_truncated_files_get_corrupt_media_not_a_crash(make: object) -> None:
    data = make()  # type: ignore[operator]
    cut = data[: len(data) // 2]
    with pytest.raises(CorruptMedia):
        write_label(cut, AigcLabel())
    with pytest.raises(CorruptMedia):
        content_digest(cut)


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + b"\x00" * width
    idat = zlib.compress(row * 16, 9)  # a few rows are enough: the header already declares the bomb
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_by_configurable_pixel_limit() -> None:
    bomb = _png_bomb(20000, 20000)
    assert len(bomb) < 2000
    with pytest.raises(DecompressionBomb, match="400000000"):
        content_digest(bomb)
    small = mf.image("PNG", size=(40, 30))
    with pytest.raises(DecompressionBomb):
        content_digest(small, MediaLimits(max_pixels=1000))
    # Labeling only rewrites metadata, so it still works without decoding the canvas.
    assert read_labels(write_label(bomb, AigcLabel()))[0].label == AigcLabel()


def test_duration_and_byte_limits() -> None:
    with pytest.raises(DecompressionBomb, match="limit"):
        content_digest(mf.wav(seconds=1.0), MediaLimits(max_duration_seconds=0.5))
    with pytest.raises(MediaTooLarge):
        inspect(mf.wav(), limits=MediaLimits(max_bytes=100))


def test_extension_mismatch_is_irrelevant() -> None:
    from PIL import Image

    png = mf.image("PNG")
    assert sniff(png) == "png"
    assert Image.open(io.BytesIO(write_label(png, AigcLabel()))).format == "PNG"
