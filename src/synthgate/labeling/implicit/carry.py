"""Carry file metadata over a step that re-encodes pixels (the invisible watermark), without
re-encoding again.

The watermark writes a fresh file with the marked pixels and no metadata: an ICC profile (the
colours), EXIF (orientation, capture data), XMP or PNG text the model's output had would be lost.
This copies those blocks from the file before the step into the file after it, at the container
level (PNG chunks, JPEG APPn segments): the new pixels are untouched. Blocks the new file already
has are not duplicated. Other containers are returned as they are.
"""

from __future__ import annotations

from synthgate.labeling.implicit import jpeg, png

# Ancillary PNG chunks that describe the picture rather than its encoding. iCCP / sRGB / gAMA /
# cHRM must precede PLTE and IDAT, so everything goes right after IHDR.
_PNG_CARRIED = (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME")
_JPEG_CARRIED = {0xE1, 0xE2, 0xED}  # APP1 (EXIF, XMP), APP2 (ICC profile), APP13 (IPTC)


def carry_metadata(source: bytes, target: bytes, kind: str) -> bytes:
    """``target`` with the metadata blocks of ``source`` it lacks (PNG and JPEG)."""
    if kind == "png":
        return _png(source, target)
    if kind == "jpeg":
        return _jpeg(source, target)
    return target


def _png_key(ctype: bytes, body: bytes) -> tuple[bytes, bytes]:
    # Text chunks are told apart by keyword; the others are unique per file.
    return (ctype, body.partition(b"\x00")[0]) if ctype in (b"tEXt", b"zTXt", b"iTXt") else (ctype, b"")


def _png(source: bytes, target: bytes) -> bytes:
    theirs = png.chunks(target)
    present = {_png_key(c, b) for c, b in theirs}
    if any(c == b"sRGB" for c, _ in theirs) or any(c == b"iCCP" for c, _ in theirs):
        present |= {(b"sRGB", b""), (b"iCCP", b"")}  # one colour space only
    extra = [(c, b) for c, b in png.chunks(source) if c in _PNG_CARRIED and _png_key(c, b) not in present]
    if not extra:
        return target
    out = [png.SIGNATURE]
    for ctype, body in theirs:
        out.append(png.chunk(ctype, body))
        if ctype == b"IHDR":
            out.extend(png.chunk(c, b) for c, b in extra)
    return b"".join(out)


def _jpeg_key(marker: int, payload: bytes) -> tuple[int, bytes]:
    # APP1 holds EXIF or XMP, APP2 the ICC profile: identified by their signature strings.
    return marker, payload[:12]


def _jpeg(source: bytes, target: bytes) -> bytes:
    theirs, sos = jpeg.segments(target)
    present = {_jpeg_key(m, p) for m, p in theirs}
    extra = [
        (m, p) for m, p in jpeg.segments(source)[0] if m in _JPEG_CARRIED and _jpeg_key(m, p) not in present
    ]
    if not extra:
        return target
    out = [b"\xff\xd8"]
    placed = False
    for marker, payload in theirs:
        if not placed and marker != 0xE0:  # after a JFIF APP0, which must come first
            out.extend(jpeg._segment(m, p) for m, p in extra)
            placed = True
        out.append(jpeg._segment(marker, payload))
    if not placed:
        out.extend(jpeg._segment(m, p) for m, p in extra)
    return b"".join(out) + target[sos:]
