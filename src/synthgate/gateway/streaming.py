"""Screening and labeling a streamed answer without ever sending a blocked character.

Text is released only once it can no longer be part of a blocked term: the last
``longest term − 1`` characters stay held back until more text (or the end) arrives. Each
feed scans only the new text plus that overlap, so a long stream costs linear time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synthgate.errors import Refused
from synthgate.labeling.text import TextLabel
from synthgate.moderation.detectors import Finding, TermListDetector


@dataclass
class StreamGuard:
    detector: TermListDetector
    label: TextLabel
    text: str = ""
    released: int = 0
    scanned: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def holdback(self) -> int:
        return max(0, self.detector.max_len - 1)

    def opening(self) -> str:
        """What goes out before the first character of the answer (a start label)."""
        return self.label.prefix

    def feed(self, delta: str) -> str:
        """Add upstream text; return the part that is safe to send now. Raises ``Refused``."""
        self.text += delta
        window_start = max(0, self.scanned - self.holdback)
        found = self.detector.scan(self.text[window_start:])
        self.scanned = len(self.text)
        if found:
            first = found[0]
            span = (first.span[0] + window_start, first.span[1] + window_start) if first.span else None
            self.findings.append(Finding(first.detector, first.category, first.score, span, first.evidence))
            raise Refused(
                "moderation.blocked",
                "DSP-10",
                "the output contains content this service does not allow; the stream was stopped",
                stage="output_screening",
                category=first.category,
                span=list(span) if span else None,
            )
        safe_end = max(self.released, len(self.text) - self.holdback)
        chunk = self.text[self.released : safe_end]
        self.released = safe_end
        return chunk

    def closing(self) -> str:
        """The held-back tail (already screened) and the end label."""
        tail = self.text[self.released :]
        self.released = len(self.text)
        return tail + self.label.suffix
