"""The codec registry: one :class:`MetadataCodec` per container kind, chosen by content sniffing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from synthgate.labeling.implicit.label import AigcLabel, InvalidLabel, parse_aigc
from synthgate.media.errors import UnsupportedMedia
from synthgate.media.sniff import sniff
from synthgate.registry import Registry, UnknownPlugin


@dataclass(frozen=True, slots=True)
class FoundLabel:
    """One label found in a file: where, in which form, the raw text and the parsed label.

    ``label`` is None (and ``error`` says why) when the raw value is not a valid AIGC object, so a
    malformed label is reported as a finding rather than lost or fatal.
    """

    where: str
    form: str
    raw: str
    label: AigcLabel | None = None
    error: str | None = None

    @classmethod
    def parse(cls, where: str, form: str, raw: str | bytes) -> FoundLabel:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        try:
            return cls(where=where, form=form, raw=text, label=parse_aigc(text))
        except InvalidLabel as exc:
            return cls(where=where, form=form, raw=text, error=exc.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "form": self.form,
            "raw": self.raw,
            "label": self.label.to_dict() if self.label else None,
            "error": self.error,
        }


class MetadataCodec(Protocol):
    """Writes and reads the AIGC label in one container family without touching the content."""

    def write(self, data: bytes, label: AigcLabel) -> bytes: ...

    def read(self, data: bytes) -> list[FoundLabel]: ...


codecs: Registry[MetadataCodec] = Registry("metadata_codecs")


def codec_for(data: bytes) -> tuple[str, MetadataCodec]:
    kind = sniff(data)
    try:
        return kind, codecs.create(kind)
    except UnknownPlugin as exc:
        raise UnsupportedMedia(f"no metadata codec for {kind} files") from exc


def write_label(data: bytes, label: AigcLabel) -> bytes:
    """Return ``data`` carrying exactly one AIGC label (an existing one is replaced in place)."""
    _, codec = codec_for(data)
    return codec.write(data, label)


def read_labels(data: bytes) -> list[FoundLabel]:
    """Every AIGC label in ``data``, in every form a reader may meet."""
    _, codec = codec_for(data)
    return codec.read(data)
