"""PNG: the label is XMP in an ``iTXt`` chunk with keyword ``XML:com.adobe.xmp``.

Chunks are copied as they are (IDAT untouched, so pixels cannot change); only the XMP chunk is
replaced or added after IHDR, and any stray ``AIGC`` text chunk is dropped (GB-6.1: one label).
"""

from __future__ import annotations

import struct
import zlib

from synthgate.labeling.implicit import xmp
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia

try:  # ISA-L's CRC is several times zlib's on the multi-megabyte IDAT chunks
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a dependency
    from zlib import crc32 as _crc32

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
MAX_TEXT = 8 * 1024 * 1024


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(SIGNATURE):
        raise CorruptMedia("not a PNG (bad signature)")
    pos, out = len(SIGNATURE), []
    while pos < len(data):
        if pos + 12 > len(data):
            raise CorruptMedia(f"PNG chunk header truncated at offset {pos}")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise CorruptMedia(f"PNG chunk {ctype!r} runs past the end of the file (truncated)")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if _crc(ctype, body) != crc:
            raise CorruptMedia(f"PNG chunk {ctype!r} at offset {pos} has a bad CRC (corrupt)")
        out.append((ctype, body))
        pos = end
        if ctype == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or out[-1][0] != b"IEND":
        raise CorruptMedia("PNG without IHDR or IEND (truncated)")
    return out


def _crc(ctype: bytes, body: bytes) -> int:
    # Chained rather than over ``ctype + body``: no copy of a large chunk just to checksum it.
    return int(_crc32(body, zlib.crc32(ctype)))


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", _crc(ctype, body))


def _text(ctype: bytes, body: bytes) -> tuple[bytes, bytes] | None:
    """(keyword, text bytes) of a tEXt / zTXt / iTXt chunk."""
    keyword, sep, rest = body.partition(b"\x00")
    if not sep:
        return None
    if ctype == b"tEXt":
        return keyword, rest
    if ctype == b"zTXt":
        return keyword, _inflate(rest[1:])
    if ctype == b"iTXt":
        if len(rest) < 2:
            return None
        compressed, text = rest[0], rest[2:]
        _, _, text = text.partition(b"\x00")  # language tag
        _, _, text = text.partition(b"\x00")  # translated keyword
        return keyword, _inflate(text) if compressed else text
    return None


def _inflate(data: bytes) -> bytes:
    # Bounded: a compressed text chunk must not become a decompression bomb.
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT)
    except zlib.error as exc:
        raise CorruptMedia(f"compressed PNG text chunk is corrupt: {exc}") from exc
    if inflater.unconsumed_tail:
        raise CorruptMedia("compressed PNG text chunk is larger than 8 MB")
    return out


def _is_aigc_text(ctype: bytes, body: bytes) -> bool:
    return ctype in (b"tEXt", b"zTXt", b"iTXt") and "AIGC" in body.partition(b"\x00")[0].decode("latin-1")


class PngCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        found: list[FoundLabel] = []
        for ctype, body in chunks(data):
            parsed = _text(ctype, body)
            if not parsed:
                continue
            keyword, text = parsed
            if keyword == XMP_KEYWORD:
                found += xmp.labels_in(text, f"{ctype.decode()} XMP")
            elif b"AIGC" in keyword:
                found.append(
                    FoundLabel.parse(f"{ctype.decode()} {keyword.decode('latin-1')}", ctype.decode(), text)
                )
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        parsed = chunks(data)
        existing = None
        for ctype, body in parsed:
            text = _text(ctype, body)
            if ctype == b"iTXt" and text and text[0] == XMP_KEYWORD:
                existing = text[1]
                break
        packet = xmp.merge(existing, label)
        new = chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
        out = [SIGNATURE]
        placed = False
        for ctype, body in parsed:
            text = _text(ctype, body) if ctype in (b"iTXt", b"tEXt", b"zTXt") else None
            if text and text[0] == XMP_KEYWORD:
                if not placed:
                    out.append(new)
                    placed = True
                continue
            if _is_aigc_text(ctype, body):
                continue
            out.append(chunk(ctype, body))
            if ctype == b"IHDR" and existing is None:
                out.append(new)
                placed = True
        return b"".join(out)


codecs.register("png")(PngCodec)
