"""JPEG: the label is an XMP packet in an APP1 segment (TC260:AIGC).

Written segment by segment: only the XMP APP1 changes; the entropy-coded data after SOS is copied
byte for byte, so the image is never re-encoded (Pillow can only write JPEG by re-encoding).
"""

from __future__ import annotations

import struct

from synthgate.labeling.implicit import _tiffstruct as tiff
from synthgate.labeling.implicit import xmp
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel, InvalidLabel
from synthgate.media.errors import CorruptMedia

XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_ID = b"Exif\x00\x00"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """Header segments as (marker, payload) up to and excluding SOS, and the SOS offset."""
    if data[:2] != b"\xff\xd8":
        raise CorruptMedia("not a JPEG (no SOI marker)")
    pos, out = 2, list[tuple[int, bytes]]()
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > len(data) or data[pos] != 0xFF:
            raise CorruptMedia(f"JPEG marker expected at offset {pos} (truncated or corrupt)")
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:
            if data.rfind(b"\xff\xd9", pos) < 0:
                raise CorruptMedia("JPEG without an end-of-image marker (truncated)")
            return out, pos
        if marker in _STANDALONE:
            out.append((marker, b""))
            pos += 2
            continue
        if pos + 4 > len(data):
            raise CorruptMedia("JPEG segment header truncated")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise CorruptMedia(f"JPEG segment at offset {pos} runs past the end (truncated)")
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length


def _segment(marker: int, payload: bytes) -> bytes:
    if marker in _STANDALONE:
        return bytes((0xFF, marker))
    if len(payload) + 2 > 0xFFFF:
        raise InvalidLabel("the XMP packet does not fit one JPEG APP1 segment (64 KB)")
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _user_comment_span(exif: bytes) -> tuple[int, int] | None:
    """(offset, length) of the EXIF UserComment inside an EXIF payload (after ``Exif\\0\\0``)."""
    body = exif[len(EXIF_ID) :]
    try:
        endian, ifd0 = tiff.header(body)
        entries, _ = tiff.read_ifd(body, ifd0, endian)
        pointer = next((e for e in entries if e.tag == tiff.TAG_EXIF_IFD), None)
        if pointer is None:
            return None
        (exif_ifd,) = struct.unpack(endian + "I", pointer.raw)
        sub, _ = tiff.read_ifd(body, exif_ifd, endian)
        comment = next((e for e in sub if e.tag == tiff.TAG_USER_COMMENT), None)
        if comment is None:
            return None
        start, length = comment.value_span(endian)
        if start + length > len(body):
            return None
        return start + len(EXIF_ID), length
    except (CorruptMedia, struct.error, ValueError):
        return None


def _user_comment_text(raw: bytes) -> str:
    code, text = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        for enc in ("utf-16-be", "utf-16-le"):
            decoded = text.decode(enc, errors="ignore")
            if "AIGC" in decoded or "Label" in decoded:
                return decoded.strip("\x00 ")
    return text.decode("utf-8", errors="replace").strip("\x00 ")


def _comment_has_label(text: str) -> bool:
    return "ContentProducer" in text or "AIGC" in text


class JpegCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        segs, _ = segments(data)
        found: list[FoundLabel] = []
        for marker, payload in segs:
            if marker == 0xE1 and payload.startswith(XMP_ID):
                found += xmp.labels_in(payload[len(XMP_ID) :], "APP1 XMP")
            elif marker == 0xE1 and payload.startswith(EXIF_ID):
                span = _user_comment_span(payload)
                if span:
                    text = _user_comment_text(payload[span[0] : span[0] + span[1]])
                    if _comment_has_label(text):
                        found.append(FoundLabel.parse("APP1 EXIF UserComment", "exif-usercomment", text))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        segs, sos = segments(data)
        existing = next((p for m, p in segs if m == 0xE1 and p.startswith(XMP_ID)), None)
        packet = XMP_ID + xmp.merge(existing[len(XMP_ID) :] if existing else None, label)
        out = [b"\xff\xd8"]
        placed = False
        for marker, payload in segs:
            if marker == 0xE1 and payload.startswith(XMP_ID):
                if not placed:  # the first XMP segment is updated in place, any duplicate dropped
                    out.append(_segment(0xE1, packet))
                    placed = True
                continue
            if marker == 0xE1 and payload.startswith(EXIF_ID):
                payload = _blank_label_comment(payload)
            if not placed and existing is None and marker not in (0xE0, 0xE1):
                out.append(_segment(0xE1, packet))
                placed = True
            out.append(_segment(marker, payload))
        if not placed:
            out.append(_segment(0xE1, packet))
        out.append(data[sos:])
        return b"".join(out)


def _blank_label_comment(payload: bytes) -> bytes:
    """GB-6.1: one label per file, so a label found in UserComment is blanked (same length,
    so no EXIF offset moves)."""
    span = _user_comment_span(payload)
    if not span:
        return payload
    start, length = span
    if not _comment_has_label(_user_comment_text(payload[start : start + length])):
        return payload
    blank = (b"ASCII\x00\x00\x00" + b" " * length)[:length] if length >= 8 else b"\x00" * length
    return payload[:start] + blank + payload[start + length :]


codecs.register("jpeg")(JpegCodec)
