"""Container detection from the bytes themselves; file names and extensions are never trusted."""

from __future__ import annotations

import zipfile
from io import BytesIO

from synthgate.media.errors import UnsupportedMedia

KINDS = (
    "jpeg",
    "png",
    "webp",
    "tiff",
    "gif",
    "mp4",
    "mkv",
    "wav",
    "mp3",
    "flac",
    "ogg",
    "docx",
    "html",
    "markdown",
)
IMAGE_KINDS = frozenset({"jpeg", "png", "webp", "tiff", "gif"})
AUDIO_KINDS = frozenset({"wav", "mp3", "flac", "ogg"})
VIDEO_KINDS = frozenset({"mp4", "mkv"})
TEXT_KINDS = frozenset({"html", "markdown"})


def _looks_like_mp3(data: bytes) -> bool:
    if data[:3] == b"ID3":
        return True
    # A bare MPEG audio frame header: 11 sync bits, a valid layer and a valid bitrate index.
    return (
        len(data) >= 4
        and data[0] == 0xFF
        and (data[1] & 0xE0) == 0xE0
        and (data[1] & 0x06) != 0
        and (data[2] & 0xF0) not in (0xF0,)
    )


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return "[Content_Types].xml" in names and "word/document.xml" in names


def _text_kind(data: bytes) -> str | None:
    head = data[:4096]
    if b"\x00" in head:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    start = text.lstrip("\ufeff \t\r\n")[:512].lower()
    if start.startswith(("<!doctype html", "<html")) or ("<head" in start and start[:1] == "<"):
        return "html"
    return "markdown"


def sniff(data: bytes) -> str:
    """The container kind of ``data`` (one of :data:`KINDS`) or :class:`UnsupportedMedia`."""
    if len(data) < 4:
        raise UnsupportedMedia("the file is empty or too short to identify")
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"PK\x03\x04":
        if _is_docx(data):
            return "docx"
        raise UnsupportedMedia("a ZIP archive that is not a Word (.docx) document")
    if _looks_like_mp3(data):
        return "mp3"
    kind = _text_kind(data)
    if kind:
        return kind
    raise UnsupportedMedia("unrecognised file format (detected from content, not the file name)")
