"""WebP: the label is XMP in an ``XMP `` chunk, which needs the extended (VP8X) header.

A simple (VP8 / VP8L) file is promoted to the extended layout by adding a VP8X chunk computed from
the bitstream header; the bitstream chunk itself is copied unchanged, so pixels cannot change.
"""

from __future__ import annotations

import struct

from synthgate.labeling.implicit import _riff, xmp
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia

FLAG_ICC, FLAG_ALPHA, FLAG_EXIF, FLAG_XMP, FLAG_ANIM = 0x20, 0x10, 0x08, 0x04, 0x02


def _canvas(fourcc: bytes, payload: bytes) -> tuple[int, int, bool]:
    """(width, height, has_alpha) from a VP8 or VP8L bitstream header."""
    if fourcc == b"VP8L":
        if len(payload) < 5 or payload[0] != 0x2F:
            raise CorruptMedia("VP8L bitstream header is corrupt")
        (bits,) = struct.unpack("<I", payload[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a":
        raise CorruptMedia("VP8 bitstream header is corrupt")
    width, height = struct.unpack("<HH", payload[6:10])
    return width & 0x3FFF, height & 0x3FFF, False


def _vp8x(flags: int, width: int, height: int) -> bytes:
    return bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


class WebpCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        found: list[FoundLabel] = []
        for fourcc, payload in _riff.parse(data, b"WEBP"):
            if fourcc == b"XMP ":
                found += xmp.labels_in(payload, "XMP chunk")
            elif fourcc == b"AIGC":
                found.append(FoundLabel.parse("AIGC chunk", "riff-chunk", payload))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        parsed = _riff.parse(data, b"WEBP")
        if not parsed:
            raise CorruptMedia("WebP without any chunk")
        existing = next((p for f, p in parsed if f == b"XMP "), None)
        packet = xmp.merge(existing, label)
        kept = [(f, p) for f, p in parsed if f not in (b"XMP ", b"AIGC")]
        if kept[0][0] == b"VP8X":
            header = bytearray(kept[0][1])
            if len(header) < 10:
                raise CorruptMedia("VP8X chunk is truncated")
            header[0] |= FLAG_XMP
            kept[0] = (b"VP8X", bytes(header))
        elif kept[0][0] in (b"VP8 ", b"VP8L"):
            width, height, alpha = _canvas(kept[0][0], kept[0][1])
            flags = FLAG_XMP | (FLAG_ALPHA if alpha else 0)
            kept.insert(0, (b"VP8X", _vp8x(flags, width, height)))
        else:
            raise CorruptMedia(f"unexpected first WebP chunk {kept[0][0]!r}")
        # The container spec puts metadata last: ... EXIF, XMP.
        kept.append((b"XMP ", packet))
        return _riff.build(b"WEBP", kept)


codecs.register("webp")(WebpCodec)
