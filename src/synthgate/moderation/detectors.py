"""The detector protocol and the built-in term-list detector.

Until the feature library lands, screening uses a configurable term list. Matching folds each
character on its own (NFKC, then case-fold, kept only when it stays one character), so every
match maps back to a span of the original text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Protocol


@dataclass(frozen=True)
class Finding:
    detector: str
    category: str
    score: float
    span: tuple[int, int] | None = None
    evidence: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Detector(Protocol):
    name: str
    version: str

    def scan(self, text: str) -> list[Finding]: ...


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return folded if len(folded) == 1 else ch.casefold() if len(ch.casefold()) == 1 else ch


def fold(text: str) -> str:
    """Length-preserving normalisation: full-width to half-width, case folded."""
    return "".join(_fold_char(ch) for ch in text)


class TermListDetector:
    name = "term-list"
    version = "1"

    def __init__(self, terms: Iterable[str], category: str = "blocked-term") -> None:
        folded = {fold(t.strip()) for t in terms if t and t.strip()}
        self.terms = sorted(folded, key=len, reverse=True)
        self.category = category
        self.max_len = max((len(t) for t in self.terms), default=0)

    def scan(self, text: str) -> list[Finding]:
        if not self.terms:
            return []
        haystack = fold(text)
        findings: list[Finding] = []
        for term in self.terms:
            start = haystack.find(term)
            while start != -1:
                end = start + len(term)
                findings.append(Finding(self.name, self.category, 1.0, (start, end), text[start:end]))
                start = haystack.find(term, start + 1)
        findings.sort(key=lambda f: f.span or (0, 0))
        return findings
