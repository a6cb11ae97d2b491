"""MP4 / MOV: key ``AIGC`` in ``moov/udta/meta`` (handler ``mdta``) ``keys``, value in ``ilst``.

Boxes are edited directly: only ``moov`` is rebuilt (its ``udta/meta`` gains or updates the key),
and when ``moov`` sits before the media data (fast start) every ``stco`` / ``co64`` chunk offset
is shifted by the change in size, so no sample moves relative to its index and nothing is
re-encoded; other boxes (chapters, timecode tracks, iTunes tags, cover art) are kept byte for
byte. FFmpeg can write the same key only by remuxing, and mutagen writes iTunes ``----`` atoms,
not the ``keys`` table the practice guide names. Fragmented files (``moof``) are remuxed with
stream copy instead, since their fragments may carry absolute offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from synthgate.labeling.implicit.av_containers import Mp4RemuxCodec
from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia

_CONTAINERS_TO_STBL = (b"trak", b"mdia", b"minf", b"stbl")
_UTF8 = 1


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) for each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise CorruptMedia(f"MP4 box header truncated at offset {pos}")
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise CorruptMedia("MP4 large box header truncated")
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise CorruptMedia(f"MP4 box {kind!r} at offset {pos} runs past its parent (truncated)")
        yield kind, pos, pos + header, pos + size
        pos += size


def _box(kind: bytes, payload: bytes) -> bytes:
    if len(payload) + 8 > 0xFFFFFFFF:
        return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def _meta_children_offset(data: bytes, payload: int, end: int) -> int:
    """``meta`` is a full box in MP4 (4 bytes of version/flags) but a plain box in old QuickTime."""
    if end - payload >= 8 and data[payload + 4 : payload + 8] in (b"hdlr", b"keys", b"ilst"):
        return payload
    return payload + 4


def _handler(data: bytes, start: int, end: int) -> bytes:
    for kind, _, payload, box_end in boxes(data, start, end):
        if kind == b"hdlr" and box_end - payload >= 12:
            return data[payload + 8 : payload + 12]
    return b""


def _read_keys(data: bytes, start: int, end: int) -> tuple[list[bytes], dict[int, list[bytes]]]:
    """Key names (index 1..n) and the ``ilst`` item payloads per key index."""
    names: list[bytes] = []
    items: dict[int, list[bytes]] = {}
    for kind, _, payload, box_end in boxes(data, start, end):
        if kind == b"keys":
            (count,) = struct.unpack(">I", data[payload + 4 : payload + 8])
            pos = payload + 8
            for _ in range(count):
                if pos + 8 > box_end:
                    raise CorruptMedia("MP4 keys table truncated")
                (size,) = struct.unpack(">I", data[pos : pos + 4])
                if size < 8 or pos + size > box_end:
                    raise CorruptMedia("MP4 keys entry runs past the table")
                names.append(data[pos + 4 : pos + size])  # namespace + name
                pos += size
        elif kind == b"ilst":
            for item, item_start, _, item_end in boxes(data, payload, box_end):
                (index,) = struct.unpack(">I", item)
                items.setdefault(index, []).append(data[item_start:item_end])
    return names, items


def _item_values(data: bytes, item: bytes) -> list[str]:
    values = []
    for kind, _, payload, end in boxes(item, 8):
        if kind == b"data" and end - payload >= 8:
            values.append(item[payload + 8 : end].decode("utf-8", errors="replace"))
    return values


def _mdta_meta(names: list[bytes], items: dict[int, list[bytes]], label: AigcLabel) -> bytes:
    kept = [(name, items.get(i + 1, [])) for i, name in enumerate(names) if b"AIGC" not in name[4:].upper()]
    value = label.to_json().encode()
    data_box = _box(b"data", struct.pack(">II", _UTF8, 0) + value)
    kept.append((b"mdta" + b"AIGC", [_box(b"\x00\x00\x00\x00", data_box)]))
    keys = struct.pack(">II", 0, len(kept)) + b"".join(struct.pack(">I", 4 + len(n)) + n for n, _ in kept)
    ilst = b""
    for index, (_, boxes_for_key) in enumerate(kept, start=1):
        for item in boxes_for_key:
            ilst += item[:4] + struct.pack(">I", index) + item[8:]  # renumbered to the new key index
    hdlr = _box(b"hdlr", b"\x00" * 8 + b"mdta" + b"\x00" * 12 + b"\x00")
    return _box(b"meta", b"\x00\x00\x00\x00" + hdlr + _box(b"keys", keys) + _box(b"ilst", ilst))


def _new_udta(data: bytes, start: int, end: int, label: AigcLabel) -> bytes:
    out, placed = b"", False
    for kind, box_start, payload, box_end in boxes(data, start, end):
        if kind == b"meta":
            children = _meta_children_offset(data, payload, box_end)
            if _handler(data, children, box_end) == b"mdta":
                if not placed:
                    out += _mdta_meta(*_read_keys(data, children, box_end), label)
                    placed = True
                continue
        out += data[box_start:box_end]
    if not placed:
        out += _mdta_meta([], {}, label)
    return _box(b"udta", out)


def _shift_offsets(moov: bytearray, start: int, end: int, delta: int, path: tuple[bytes, ...]) -> None:
    for kind, _, payload, box_end in list(boxes(bytes(moov), start, end)):
        if path and kind == path[0]:
            _shift_offsets(moov, payload, box_end, delta, path[1:])
        elif not path and kind in (b"stco", b"co64"):
            (count,) = struct.unpack(">I", moov[payload + 4 : payload + 8])
            width, fmt = (4, ">I") if kind == b"stco" else (8, ">Q")
            if payload + 8 + count * width > box_end:
                raise CorruptMedia(f"MP4 {kind.decode()} table truncated")
            for i in range(count):
                at = payload + 8 + i * width
                (offset,) = struct.unpack(fmt, moov[at : at + width])
                if offset + delta >= 1 << (8 * width):
                    raise CorruptMedia("chunk offsets would overflow 32 bits; use a co64 file")
                moov[at : at + width] = struct.pack(fmt, offset + delta)


class Mp4Codec:
    def read(self, data: bytes) -> list[FoundLabel]:
        found: list[FoundLabel] = []
        for kind, _, payload, end in boxes(data):
            if kind != b"moov":
                continue
            for where, start, stop in self._metas(data, payload, end):
                names, items = _read_keys(data, start, stop)
                for index, name in enumerate(names, start=1):
                    if b"AIGC" in name[4:].upper():
                        for item in items.get(index, []):
                            for value in _item_values(data, item):
                                found.append(
                                    FoundLabel.parse(f"{where}/keys {name[4:].decode()}", "mp4-keys", value)
                                )
                for index, item_boxes in items.items():
                    if index == 0x2D2D2D2D:  # '----' iTunes freeform atoms, seen in other writers' files
                        for item in item_boxes:
                            if b"AIGC" in item:
                                for value in _item_values(data, item):
                                    if "Label" in value:
                                        found.append(
                                            FoundLabel.parse(f"{where}/ilst ----", "mp4-freeform", value)
                                        )
        return found

    def _metas(self, data: bytes, start: int, end: int) -> Iterator[tuple[str, int, int]]:
        for kind, _, payload, box_end in boxes(data, start, end):
            if kind == b"meta":
                yield "moov/meta", _meta_children_offset(data, payload, box_end), box_end
            elif kind == b"udta":
                for sub, _, sub_payload, sub_end in boxes(data, payload, box_end):
                    if sub == b"meta":
                        yield "moov/udta/meta", _meta_children_offset(data, sub_payload, sub_end), sub_end

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        top = list(boxes(data))
        kinds = [k for k, *_ in top]
        if kinds.count(b"moov") != 1:
            raise CorruptMedia(f"an MP4 needs exactly one moov box, this one has {kinds.count(b'moov')}")
        if b"moof" in kinds:
            return Mp4RemuxCodec().write(data, label)
        _, moov_start, moov_payload, moov_end = next(t for t in top if t[0] == b"moov")
        children, has_udta = b"", False
        for kind, box_start, payload, box_end in boxes(data, moov_payload, moov_end):
            if kind == b"udta":
                if not has_udta:
                    children += _new_udta(data, payload, box_end, label)
                    has_udta = True
                else:
                    children += data[box_start:box_end]
            else:
                children += data[box_start:box_end]
        if not has_udta:
            children += _box(b"udta", _mdta_meta([], {}, label))
        moov = bytearray(_box(b"moov", children))
        delta = len(moov) - (moov_end - moov_start)
        media_after = any(k == b"mdat" and s > moov_start for k, s, _, _ in top)
        if delta and media_after:
            header = 16 if moov[:4] == b"\x00\x00\x00\x01" else 8
            _shift_offsets(moov, header, len(moov), delta, (b"trak", b"mdia", b"minf", b"stbl"))
        return data[:moov_start] + bytes(moov) + data[moov_end:]


codecs.register("mp4")(Mp4Codec)
