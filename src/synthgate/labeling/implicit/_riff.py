"""RIFF chunk lists (WebP, WAV): parse, rebuild with the right sizes and pad bytes."""

from __future__ import annotations

import struct

from synthgate.media.errors import CorruptMedia


def parse(data: bytes, form: bytes) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != form:
        raise CorruptMedia(f"not a RIFF {form.decode().strip()} file")
    (declared,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + declared)
    if 8 + declared > len(data) + 1:  # one missing pad byte is common and harmless
        raise CorruptMedia(f"RIFF declares {declared + 8} bytes but the file has {len(data)} (truncated)")
    pos, out = 12, []
    while pos + 8 <= end:
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        if pos + 8 + size > end:
            raise CorruptMedia(f"RIFF chunk {fourcc!r} runs past the end of the file (truncated)")
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def build(form: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
        for fourcc, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + form + body
