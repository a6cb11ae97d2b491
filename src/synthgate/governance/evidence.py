"""Evidence files for assessments, DSP-7 records, filings and labeling materials.

A file is accepted only when its content is one of the document kinds below (sniffed from the
bytes, never from the name) and, when its name has a known extension, the content matches it: a
"report.pdf" that is really a ZIP is refused, so a reviewer opening evidence gets what it says.
Files are stored content-addressed under the data directory's blob folder (written to a temporary
name and renamed, so a crash never leaves half a file under a real digest); the database row holds
the digest, so tampering with a stored file is detected when it is read back.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import zipfile
from io import BytesIO
from pathlib import Path

from synthgate.errors import InvalidInput
from synthgate.media.errors import UnsupportedMedia
from synthgate.media.sniff import sniff as sniff_media

KIND_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "tiff": "image/tiff",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text": "text/plain; charset=utf-8",
    "mp4": "video/mp4",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}
"""What may be evidence: documents, images, and audio/video samples (labeling materials)."""

EXTENSIONS = {
    ".pdf": {"pdf"},
    ".png": {"png"},
    ".jpg": {"jpeg"},
    ".jpeg": {"jpeg"},
    ".webp": {"webp"},
    ".gif": {"gif"},
    ".tif": {"tiff"},
    ".tiff": {"tiff"},
    ".docx": {"docx"},
    ".xlsx": {"xlsx"},
    ".pptx": {"pptx"},
    ".txt": {"text"},
    ".md": {"text"},
    ".csv": {"text"},
    ".json": {"text"},
    ".mp4": {"mp4"},
    ".wav": {"wav"},
    ".mp3": {"mp3"},
}


def _office_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for kind, marker in (
        ("docx", "word/document.xml"),
        ("xlsx", "xl/workbook.xml"),
        ("pptx", "ppt/presentation.xml"),
    ):
        if marker in names:
            return kind
    return None


def sniff(data: bytes) -> str:
    """The evidence kind of ``data`` (a key of :data:`KIND_TYPES`), or a clear 422."""
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        office = _office_kind(data)
        if office:
            return office
        raise InvalidInput("a ZIP archive that is not a Word, Excel or PowerPoint document", field="file")
    try:
        kind = sniff_media(data)
    except UnsupportedMedia as exc:
        raise InvalidInput(f"not an accepted evidence file: {exc.message}", field="file") from exc
    if kind in ("markdown", "html"):
        return "text"
    if kind not in KIND_TYPES:
        raise InvalidInput(f"{kind} files are not accepted as evidence", field="file")
    return kind


_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)


def clean_filename(name: str) -> str:
    """The file's base name, without path parts or control characters, at most 200 characters."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    base = _UNSAFE.sub("_", base).strip(". ")
    return base[:200] or "evidence"


def check(filename: str, data: bytes, max_bytes: int) -> tuple[str, str]:
    """(clean name, kind) of an upload, or a 422 saying what is wrong with it."""
    if not data:
        raise InvalidInput("the file is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the file is {len(data)} bytes; evidence files may be at most {max_bytes}", field="file"
        )
    name = clean_filename(filename)
    kind = sniff(data)
    expected = EXTENSIONS.get(Path(name).suffix.lower())
    if expected is not None and kind not in expected:
        raise InvalidInput(
            f"{name} is named like a {Path(name).suffix.lower()} file but its content is {kind}",
            field="file",
        )
    return name, kind


class EvidenceStore:
    """Content-addressed files below ``root`` (``<data dir>/blobs/governance``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256 digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{digest}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return digest

    def get(self, sha256: str) -> bytes:
        """The stored bytes; a file whose content no longer matches its digest is an error."""
        try:
            data = self._path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"evidence file {sha256} is missing from the store") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"evidence file {sha256} was altered in storage")
        return data
