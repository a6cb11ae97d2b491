"""WAV: the label is a RIFF sub-chunk ``AIGC`` holding the JSON (TC260 practice guide).

No audio library writes arbitrary RIFF chunks, so chunks are rebuilt here; ``fmt `` and ``data``
are copied byte for byte.
"""

from __future__ import annotations

from synthgate.labeling.implicit import _riff
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia


def _info_labels(payload: bytes) -> list[FoundLabel]:
    """An ``AIGC`` entry in a LIST/INFO chunk (an optional copy some writers add)."""
    if payload[:4] != b"INFO":
        return []
    found, pos = [], 4
    while pos + 8 <= len(payload):
        fourcc, size = payload[pos : pos + 4], int.from_bytes(payload[pos + 4 : pos + 8], "little")
        if fourcc == b"AIGC":
            found.append(FoundLabel.parse("LIST/INFO AIGC", "riff-info", payload[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return found


def _drop_info_label(payload: bytes) -> bytes:
    """GB-6.1: the label lives in the ``AIGC`` chunk only, so a LIST/INFO copy is removed."""
    if payload[:4] != b"INFO" or b"AIGC" not in payload:
        return payload
    out, pos = bytearray(b"INFO"), 4
    while pos + 8 <= len(payload):
        size = int.from_bytes(payload[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if payload[pos : pos + 4] != b"AIGC":
            out += payload[pos:end]
        pos = end
    return bytes(out)


class WavCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        found: list[FoundLabel] = []
        for fourcc, payload in _riff.parse(data, b"WAVE"):
            if fourcc == b"AIGC":
                found.append(FoundLabel.parse("RIFF AIGC chunk", "riff-chunk", payload))
            elif fourcc == b"LIST":
                found += _info_labels(payload)
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        parsed = _riff.parse(data, b"WAVE")
        if not any(f == b"data" for f, _ in parsed):
            raise CorruptMedia("WAV file without a data chunk")
        kept = [(f, _drop_info_label(p) if f == b"LIST" else p) for f, p in parsed if f != b"AIGC"]
        position = next((i for i, (f, _) in enumerate(parsed) if f == b"AIGC"), None)
        chunk = (b"AIGC", label.to_json().encode())
        if position is None:
            kept.append(chunk)
        else:
            kept.insert(position, chunk)  # an existing label is updated where it was
        return _riff.build(b"WAVE", kept)


codecs.register("wav")(WavCodec)
