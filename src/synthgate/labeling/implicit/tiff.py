"""TIFF: the label is XMP in IFD0 tag 700 (0x02BC).

Strips and tiles never move. The XMP bytes are appended; IFD0 is rewritten in place when the
number of its entries stays the same, otherwise a copy with the new entry is appended and the
header points to it (every other entry keeps its absolute offsets, so nothing else changes).
Pillow could write the tag only by re-encoding the image.
"""

from __future__ import annotations

import struct

from synthgate.labeling.implicit import _tiffstruct as t
from synthgate.labeling.implicit import xmp
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia


def _ifd_bytes(entries: list[tuple[int, int, int, bytes]], next_ifd: int, endian: str) -> bytes:
    out = struct.pack(endian + "H", len(entries))
    for tag, typ, count, raw in sorted(entries, key=lambda e: e[0]):
        out += struct.pack(endian + "HHI", tag, typ, count) + raw
    return out + struct.pack(endian + "I", next_ifd)


def _check_image_data(data: bytes, entries: list[t.Entry], endian: str) -> None:
    """Strips or tiles past the end of the file mean a truncated TIFF (Pillow would pad silently)."""
    by_tag = {e.tag: e for e in entries}
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        if offsets_tag in by_tag and counts_tag in by_tag:
            offsets, counts = by_tag[offsets_tag], by_tag[counts_tag]
            o_fmt = "I" if offsets.type == 4 else "H"
            c_fmt = "I" if counts.type == 4 else "H"
            starts = struct.unpack(f"{endian}{offsets.count}{o_fmt}", t.value(data, offsets, endian))
            sizes = struct.unpack(f"{endian}{counts.count}{c_fmt}", t.value(data, counts, endian))
            if any(a + b > len(data) for a, b in zip(starts, sizes, strict=False)):
                raise CorruptMedia("TIFF image data runs past the end of the file (truncated)")


class TiffCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        endian, ifd0 = t.header(data)
        entries, _ = t.read_ifd(data, ifd0, endian)
        _check_image_data(data, entries, endian)
        found: list[FoundLabel] = []
        for entry in entries:
            if entry.tag == t.TAG_XMP:
                found += xmp.labels_in(t.value(data, entry, endian), "IFD0 XMP (tag 700)")
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        endian, ifd0 = t.header(data)
        entries, next_ifd = t.read_ifd(data, ifd0, endian)
        _check_image_data(data, entries, endian)
        old = next((e for e in entries if e.tag == t.TAG_XMP), None)
        existing = t.value(data, old, endian) if old else None
        packet = xmp.merge(existing, label)
        out = bytearray(data)
        xmp_offset = -1
        if old is not None:
            # The old packet is zeroed so no stale label survives for a byte scanner to find;
            # a new packet that fits reuses its space, so rewriting does not grow the file.
            start, length = old.value_span(endian)
            out[start : start + length] = b"\x00" * length
            if len(packet) <= length and length > 4:
                out[start : start + len(packet)] = packet
                xmp_offset = start
        if xmp_offset < 0:
            if len(out) & 1:
                out += b"\x00"  # TIFF offsets are word-aligned
            xmp_offset = len(out)
            out += packet
            if len(out) & 1:
                out += b"\x00"
        rows = [(e.tag, e.type, e.count, e.raw) for e in entries if e.tag != t.TAG_XMP]
        rows.append((t.TAG_XMP, 1, len(packet), struct.pack(endian + "I", xmp_offset)))
        ifd = _ifd_bytes(rows, next_ifd, endian)
        if old is not None:
            out[ifd0 : ifd0 + len(ifd)] = ifd
        else:
            new_ifd0 = len(out)
            out += ifd
            out[4:8] = struct.pack(endian + "I", new_ifd0)
        return bytes(out)


codecs.register("tiff")(TiffCodec)
