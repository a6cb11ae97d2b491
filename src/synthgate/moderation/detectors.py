"""The detector protocol, the per-character fold, and the plain term-list detector.

``TermListDetector`` is a lexicon matcher over a bare list of terms (the deployment's and each
service's ``blocked_terms``); it gets the same evasion-resistant matching as the feature library.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from synthgate.moderation.findings import Detector, Finding
from synthgate.moderation.lexicon import LexiconEntry, LexiconMatcher

__all__ = ["Detector", "Finding", "TermListDetector", "fold"]


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return folded if len(folded) == 1 else ch.casefold() if len(ch.casefold()) == 1 else ch


def fold(text: str) -> str:
    """Length-preserving normalisation: full-width to half-width, case folded."""
    return "".join(_fold_char(ch) for ch in text)


class TermListDetector(LexiconMatcher):
    name = "term-list"

    def __init__(self, terms: Iterable[str], category: str = "blocked-term") -> None:
        unique = sorted({t.strip() for t in terms if t and t.strip()})
        super().__init__(
            (LexiconEntry(f"term:{i}", "term", t, category) for i, t in enumerate(unique)), version="1"
        )
        self.category = category
