"""Just enough of the TIFF structure (shared by TIFF files and JPEG EXIF) to find and edit tags."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from synthgate.media.errors import CorruptMedia, UnsupportedMedia

TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TAG_XMP = 0x02BC
TAG_EXIF_IFD = 0x8769
TAG_USER_COMMENT = 0x9286
MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class Entry:
    tag: int
    type: int
    count: int
    raw: bytes
    """The 4-byte value/offset field as stored."""
    position: int
    """Offset of the 12-byte entry inside the TIFF data."""

    def value_span(self, endian: str) -> tuple[int, int]:
        """(offset, length) of the value bytes, inline or not."""
        length = TYPE_SIZES.get(self.type, 1) * self.count
        if length <= 4:
            return self.position + 8, length
        return struct.unpack(endian + "I", self.raw)[0], length


def header(data: bytes) -> tuple[str, int]:
    if data[:4] == b"II*\x00":
        endian = "<"
    elif data[:4] == b"MM\x00*":
        endian = ">"
    elif data[:4] in (b"II+\x00", b"MM\x00+"):
        raise UnsupportedMedia("BigTIFF is not supported")
    else:
        raise CorruptMedia("not a TIFF structure")
    if len(data) < 8:
        raise CorruptMedia("truncated TIFF header")
    return endian, struct.unpack(endian + "I", data[4:8])[0]


def read_ifd(data: bytes, offset: int, endian: str) -> tuple[list[Entry], int]:
    """Entries of the IFD at ``offset`` and the next-IFD offset."""
    if offset + 2 > len(data):
        raise CorruptMedia(f"IFD offset {offset} is outside the file (truncated?)")
    (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
    if count > MAX_ENTRIES or offset + 2 + 12 * count + 4 > len(data):
        raise CorruptMedia("IFD runs past the end of the file (truncated?)")
    entries = []
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, typ, n = struct.unpack(endian + "HHI", data[pos : pos + 8])
        entries.append(Entry(tag, typ, n, data[pos + 8 : pos + 12], pos))
    (next_ifd,) = struct.unpack(endian + "I", data[offset + 2 + 12 * count : offset + 6 + 12 * count])
    return entries, next_ifd


def value(data: bytes, entry: Entry, endian: str) -> bytes:
    start, length = entry.value_span(endian)
    if start + length > len(data):
        raise CorruptMedia(f"tag {entry.tag:#06x} points past the end of the file (truncated?)")
    return data[start : start + length]
