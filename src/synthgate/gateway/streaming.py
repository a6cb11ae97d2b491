"""Screening and labeling a streamed answer without ever sending a blocked character.

Text is released only once it can no longer be part of a blocked match: the screener says how
far that is (``safe_end``: a lexicon keeps back its longest normalised term, counted in kept
characters, so inserted spaces or symbols cannot smuggle a term past the hold-back). Each feed
rescans only the unreleased tail, which that hold-back bounds, so a long stream costs linear time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from synthgate.errors import Refused
from synthgate.labeling.text import TextLabel
from synthgate.moderation.findings import Finding


class StreamScreener(Protocol):
    name: str
    version: str

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]: ...

    def safe_end(self, text: str, start: int) -> int: ...


def _first(findings: list[Finding]) -> Finding | None:
    return findings[0] if findings else None


@dataclass
class StreamGuard:
    detector: StreamScreener
    label: TextLabel
    decide: Callable[[list[Finding]], Finding | None] = _first
    """Picks the finding that stops the stream (the policy's block), or None to go on."""
    text: str = ""
    released: int = 0
    findings: list[Finding] = field(default_factory=list)
    """Findings that did not stop the stream (flags), kept for the verdict."""
    _seen: set[tuple[str, str, tuple[int, int] | None]] = field(default_factory=set)

    def opening(self) -> str:
        """What goes out before the first character of the answer (a start label)."""
        return self.label.prefix

    def _screen(self, final: bool) -> None:
        found = self.detector.scan_window(self.text, self.released, final=final)
        stop = self.decide(found) if found else None
        if stop is not None:
            self.findings.append(stop)
            raise Refused(
                "moderation.blocked",
                "DSP-10",
                "the output contains content this service does not allow; the stream was stopped",
                stage="output_screening",
                category=stop.category,
                span=list(stop.span) if stop.span else None,
            )
        for finding in found:
            key = (finding.detector, finding.rule, finding.span)
            if key not in self._seen:
                self._seen.add(key)
                self.findings.append(finding)

    def feed(self, delta: str) -> str:
        """Add upstream text; return the part that is safe to send now. Raises ``Refused``."""
        self.text += delta
        self._screen(final=False)
        safe_end = max(self.released, self.detector.safe_end(self.text, self.released))
        chunk = self.text[self.released : safe_end]
        self.released = safe_end
        return chunk

    def closing(self) -> str:
        """The held-back tail (screened as final: no more text can follow) and the end label."""
        self._screen(final=True)
        tail = self.text[self.released :]
        self.released = len(self.text)
        return tail + self.label.suffix
