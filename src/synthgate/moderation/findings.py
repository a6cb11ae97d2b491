"""What a detector reports: one finding per thing it saw, with evidence and where it was."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Finding:
    detector: str
    category: str
    score: float
    span: tuple[int, int] | None = None
    """Character offsets in the original text (never in a normalised copy)."""
    evidence: str = ""
    rule: str = ""
    """The library entry, pattern or check that fired (an id, never the matched personal data)."""
    variant: str = ""
    """How it matched: ``term``, ``pinyin``, ``initials``, ``pattern``, ``checksum``, …"""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.span is not None:
            data["span"] = list(self.span)
        return data


class Detector(Protocol):
    name: str
    version: str

    def scan(self, text: str) -> list[Finding]: ...
