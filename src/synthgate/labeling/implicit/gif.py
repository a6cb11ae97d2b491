"""GIF: the label is XMP in the Application Extension ``XMP DataXMP``.

The XMP spec stores the packet raw (its bytes double as sub-block lengths) followed by a 258-byte
"magic trailer" that walks any GIF parser back onto the block terminator. Image blocks are copied
byte for byte, so frames and palettes cannot change; Pillow cannot write this extension.
"""

from __future__ import annotations

from synthgate.labeling.implicit import xmp
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel, InvalidLabel
from synthgate.media.errors import CorruptMedia

APP_ID = b"XMP DataXMP"
MAGIC_TRAILER = b"\x01" + bytes(range(0xFF, -1, -1)) + b"\x00"


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise CorruptMedia("GIF data sub-blocks run past the end of the file (truncated)")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def blocks(data: bytes) -> tuple[int, list[tuple[str, int, int]]]:
    """End of the header + global colour table, and (kind, start, end) of each following block."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise CorruptMedia("not a GIF or truncated header")
    packed = data[10]
    pos = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)
    header_end, out = pos, []
    while True:
        if pos >= len(data):
            raise CorruptMedia("GIF ends without a trailer (truncated)")
        start, intro = pos, data[pos]
        if intro == 0x3B:
            out.append(("trailer", start, pos + 1))
            return header_end, out
        if intro == 0x21:
            if pos + 2 > len(data):
                raise CorruptMedia("GIF extension truncated")
            label = data[pos + 1]
            kind = "ext"
            if label == 0xFF and data[pos + 2 : pos + 3] == b"\x0b" and data[pos + 3 : pos + 14] == APP_ID:
                kind = "xmp"
            pos = _skip_sub_blocks(data, pos + 2)
            out.append((kind, start, pos))
        elif intro == 0x2C:
            if pos + 10 > len(data):
                raise CorruptMedia("GIF image descriptor truncated")
            flags = data[pos + 9]
            pos += 10 + (3 * (2 ** ((flags & 7) + 1)) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # LZW minimum code size, then the data
            out.append(("image", start, pos))
        else:
            raise CorruptMedia(f"unknown GIF block 0x{intro:02x} at offset {pos} (corrupt)")


def _packet(data: bytes, start: int, end: int) -> bytes:
    body = data[start + 14 : end]
    return body[: -len(MAGIC_TRAILER)] if body.endswith(MAGIC_TRAILER) else body.rstrip(b"\x00")


class GifCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        _, parsed = blocks(data)
        found: list[FoundLabel] = []
        for kind, start, end in parsed:
            if kind == "xmp":
                found += xmp.labels_in(_packet(data, start, end), "Application Extension XMP Data")
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        header_end, parsed = blocks(data)
        existing = next((_packet(data, s, e) for k, s, e in parsed if k == "xmp"), None)
        packet = xmp.merge(existing, label)
        if b"\x00" in packet:
            raise InvalidLabel("an XMP packet for GIF cannot contain NUL bytes")
        extension = b"\x21\xff\x0b" + APP_ID + packet + MAGIC_TRAILER
        out = [data[:header_end], extension]
        out += [data[s:e] for k, s, e in parsed if k != "xmp"]
        return b"".join(out)


codecs.register("gif")(GifCodec)
