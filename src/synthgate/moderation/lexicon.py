"""The lexicon matcher: one Aho–Corasick pass over normalised text, spans mapped back.

Every term is compiled into its normalised form plus, for Chinese terms, its pinyin (full, and
initials for terms of three or more Han characters: two-letter initials would match everywhere).
Screened text is normalised the same way (``normalize.py``), then one overlapping Aho–Corasick
scan (``ahocorasick-rs``) finds every variant at once: time is linear in the text whatever the
size of the library, and nothing can backtrack. Patterns (for the few things a term cannot say)
run on RE2, which is linear by construction.

Terms that begin or end with a Latin letter or digit must sit on a word boundary in the original
text, so "ass" does not fire inside "class"; an allow-list entry whose match covers a finding
suppresses it ("法轮寺" is a temple).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import ahocorasick_rs
import numpy as np
import numpy.typing as npt
import re2  # type: ignore[import-untyped]
from pypinyin import Style, lazy_pinyin

from synthgate.moderation.findings import Finding
from synthgate.moderation.normalize import TABLE_VERSION, Normalized, fold_table, normalize, normalize_term

EntryKind = Literal["term", "pattern", "allow"]
Variant = Literal["term", "pinyin", "initials", "allow"]

MAX_EVIDENCE = 200
STREAM_PATTERN_WINDOW = 128
"""Original characters a stream holds back for patterns, whose length RE2 cannot bound."""


@dataclass(frozen=True)
class LexiconEntry:
    id: str
    kind: EntryKind
    value: str
    category: str
    severity: int = 5
    """1 (lowest) … 5; a finding's score is severity / 5."""


def _is_han(ch: str) -> bool:
    return "CJK UNIFIED IDEOGRAPH" in unicodedata.name(ch, "")


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


INITIALS_MIN_HAN = 4
"""Initials only for terms of four or more Han characters: with a large library nearly every
three-letter string is somebody's initials, and every short English word would fire."""


PINYIN_MIN_UNSPLIT = 6
"""A pinyin spelling shorter than this must show its syllable breaks in the text ("pa ge"):
short English words ("line", "page") read as two syllables of some two-character term."""


def _form(text: str) -> tuple[str, frozenset[int], tuple[int, ...]]:
    """The normalised form of ``text``, where skip characters split it, and its run lengths."""
    norm = normalize(text)
    gaps = frozenset(k for k in range(1, len(norm.text)) if norm.starts[k] > norm.ends[k - 1])
    runs = tuple(int(c) for c in norm.counts)
    return norm.text, gaps, runs if any(c > 1 for c in runs) else ()


def term_variants(
    value: str, *, pinyin: bool = True
) -> list[tuple[Variant, str, frozenset[int], tuple[int, ...]]]:
    """The normalised forms a term is matched under, each with the places a Latin-letter match may
    be split by spaces or symbols (the term's own word or syllable breaks) and the run lengths a
    match must reach ("google" needs two o's: collapsing repeats must not widen a term)."""
    variants: list[tuple[Variant, str, frozenset[int], tuple[int, ...]]] = []
    base, breaks, runs = _form(value)
    if base:
        variants.append(("term", base, breaks, runs))
    if pinyin:
        # Pinyin from the term as written: its folded form turns Chinese digits into 0-9.
        written = "".join(c for c in value if not c.isspace())
        han = [c for c in written if _is_han(c)]
        if han:
            full, syllables, runs = _form(" ".join(lazy_pinyin(written, errors="default")))
            if full and full != base:
                variants.append(("pinyin", full, syllables, runs))
            if len(han) >= INITIALS_MIN_HAN and len(han) == len(written):
                initials = normalize_term("".join(lazy_pinyin(written, style=Style.FIRST_LETTER)))
                # Repeated initials collapse ("bbyy" → "by"): too short to tell apart from words.
                if len(initials) >= INITIALS_MIN_HAN:
                    variants.append(("initials", initials, frozenset(), ()))
    return variants


@dataclass(frozen=True)
class _Target:
    entry: int
    variant: Variant
    left_boundary: bool
    right_boundary: bool
    latin: bool
    breaks: frozenset[int]
    runs: tuple[int, ...]
    must_split: bool


class LexiconMatcher:
    """Compiled, immutable; swapped whole when a new library version is published."""

    name = "lexicon"

    def __init__(self, entries: Iterable[LexiconEntry], *, version: str = "0", pinyin: bool = True) -> None:
        self.entries: list[LexiconEntry] = []
        patterns: list[str] = []
        targets: list[list[_Target]] = []
        index: dict[str, int] = {}
        self._regexes: list[tuple[int, Any]] = []
        digest = hashlib.sha256(TABLE_VERSION.encode())
        for entry in entries:
            number = len(self.entries)
            self.entries.append(entry)
            digest.update(f"{entry.kind}\0{entry.value}\0{entry.category}\0{entry.severity}\n".encode())
            if entry.kind == "pattern":
                self._regexes.append((number, re2.compile(entry.value)))
                continue
            forms = term_variants(entry.value, pinyin=pinyin and entry.kind == "term")
            # Word boundaries follow the term as written: "八八…" folds to "88…" but is no Latin word.
            written = [c for c in unicodedata.normalize("NFKC", entry.value) if c.isalnum()]
            for variant, form, breaks, runs in forms:
                spelled = variant in ("pinyin", "initials")
                slot = index.get(form)
                if slot is None:
                    slot = index[form] = len(patterns)
                    patterns.append(form)
                    targets.append([])
                targets[slot].append(
                    _Target(
                        number,
                        "allow" if entry.kind == "allow" else variant,
                        spelled or (bool(written) and _is_word_char(written[0]) and _is_word_char(form[0])),
                        spelled or (bool(written) and _is_word_char(written[-1]) and _is_word_char(form[-1])),
                        spelled
                        or (all(_is_word_char(c) for c in written) and all(_is_word_char(c) for c in form)),
                        breaks,
                        runs,
                        variant == "pinyin" and len(form) < PINYIN_MIN_UNSPLIT and bool(breaks),
                    )
                )
        self._patterns = patterns
        self._targets = targets
        # Two automata. Patterns that are all ASCII after normalisation (Latin terms, pinyin,
        # initials: over half the variants) run over the text as one byte per character, every
        # other character turned into 0xFF, which no pattern contains. The rest run over UTF-16-LE
        # bytes: two bytes per Han character instead of three, and a byte offset halves to a
        # character index without the str API's UTF-8 bookkeeping. Splitting them keeps each
        # automaton smaller and halves the steps over Latin text (bench/lexicon.py: the scan went
        # from 17 to 49 MB/s on the same CPU).
        self._ascii_slots = [slot for slot, p in enumerate(patterns) if p.isascii()]
        self._wide_slots = [slot for slot, p in enumerate(patterns) if not p.isascii()]
        self._ascii_automaton = _automaton([patterns[s].encode("ascii") for s in self._ascii_slots])
        self._automaton = _automaton(
            [patterns[s].encode("utf-16-le", "surrogatepass") for s in self._wide_slots]
        )
        self._has_terms = bool(patterns)
        # Per pattern: does every one of its targets need a word boundary on the left / right?
        # Lets _prefilter drop, in one vectorised pass, the many Latin and pinyin candidates that
        # sit inside longer words ("pa" in "page") before any per-match Python runs.
        self._needs_left = np.array(
            [all(t.left_boundary and t.variant != "allow" for t in ts) for ts in targets], dtype=bool
        )
        self._needs_right = np.array(
            [all(t.right_boundary and t.variant != "allow" for t in ts) for ts in targets], dtype=bool
        )
        self.max_len = max((len(p) for p in patterns), default=0)
        self.version = f"{version}+{digest.hexdigest()[:12]}"
        self.has_patterns = bool(self._regexes)

    def __len__(self) -> int:
        return len(self.entries)

    # --- scanning ------------------------------------------------------------------------------

    def scan(self, text: str) -> list[Finding]:
        return self.scan_window(text, 0, final=True)

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]:
        """Findings in ``text[start:]`` with spans in ``text``.

        With ``final=False`` (a stream that may go on) a match that ends at the end of the text
        and needs a word boundary there is left for the next call: the next character decides.
        """
        window = text[start:] if start else text
        findings: list[Finding] = []
        if self._has_terms and window:
            findings.extend(self._scan_terms(text, window, start, final))
        for number, regex in self._regexes:
            folded = fold_keep(window)
            for match in regex.finditer(folded):
                a, b = match.span()
                if a == b:
                    continue
                findings.append(self._finding(number, "pattern", text, start + a, start + b))
        findings.sort(key=lambda f: (f.span or (0, 0), -f.score))
        return findings

    def _scan_terms(self, text: str, window: str, offset: int, final: bool) -> list[Finding]:
        norm = normalize(window)
        if not len(norm):
            return []
        hits = self._find(norm.codes)
        if len(hits) > _PREFILTER_MIN_HITS:
            word_before = offset > 0 and _is_word_char(_fold_char(text[offset - 1]))
            hits = self._prefilter(hits, norm, word_before, final)
        if not hits:
            return []
        starts, ends = norm.starts, norm.ends
        edges: _Edges | None = None
        allowed: list[tuple[int, int]] = []
        found: list[tuple[int, int, _Target]] = []
        for slot, a, b in hits:
            for target in self._targets[slot]:
                if target.variant == "allow":
                    allowed.append((a, b))
                    continue
                if target.runs and any(norm.counts[a + k] < n for k, n in enumerate(target.runs)):
                    continue
                if target.left_boundary or target.right_boundary or target.latin:
                    if edges is None:  # computed once, and only when a Latin match needs it
                        edges = _Edges(norm, text, window, offset)
                    if not edges.accepts(target, a, b, final):
                        continue
                found.append((a, b, target))
        results = []
        for a, b, target in found:
            if allowed and any(x <= a and b <= y for x, y in allowed):
                continue
            orig_a = int(starts[a]) + offset
            orig_b = int(ends[b - 1]) + offset
            results.append(self._finding(target.entry, target.variant, text, orig_a, orig_b))
        return results

    def _find(self, codes: npt.NDArray[np.uint32]) -> list[tuple[int, int, int]]:
        """(pattern, start, end) in characters of the normalised text."""
        found: list[tuple[int, int, int]] = []
        if self._ascii_automaton is not None:
            # Characters 0x80–0xFE stay as they are (no ASCII pattern contains such a byte either).
            narrow = np.minimum(codes, 0xFF).astype(np.uint8).tobytes()
            slots = self._ascii_slots
            found.extend(
                (slots[k], a, b)
                for k, a, b in self._ascii_automaton.find_matches_as_indexes(narrow, overlapping=True)
            )
        if self._automaton is None:
            return found
        top = int(codes.max())
        if top < 0x80:
            return found  # nothing but ASCII: no other pattern can match
        slots = self._wide_slots
        if top < 0x10000:
            raw = self._automaton.find_matches_as_indexes(codes.astype("<u2").tobytes(), overlapping=True)
            # A match at an odd byte offset straddles two characters: not a match.
            found.extend((slots[k], a >> 1, b >> 1) for k, a, b in raw if not a & 1)
            return found
        # Characters outside the BMP take two UTF-16 units: map units back to characters.
        data = codes.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-16-le", "surrogatepass")
        units = np.where(codes >= 0x10000, 2, 1)
        char_at = np.repeat(np.arange(codes.size), units)
        char_at = np.append(char_at, codes.size)
        raw = self._automaton.find_matches_as_indexes(data, overlapping=True)
        found.extend((slots[k], int(char_at[a >> 1]), int(char_at[b >> 1])) for k, a, b in raw if not a & 1)
        return found

    def _prefilter(
        self, hits: list[tuple[int, int, int]], norm: Normalized, word_before: bool, final: bool
    ) -> list[tuple[int, int, int]]:
        """Drop the hits whose every target needs a word boundary that is not there (the same
        test as ``_Edges.accepts``, for all hits at once); the survivors are checked in full."""
        found = np.array(hits, dtype=np.int64)
        slots, a, b = found[:, 0], found[:, 1], found[:, 2]
        size = norm.folded.size
        start = norm.starts[a]
        end = norm.ends[b - 1]
        folded = norm.folded
        # A Latin letter or digit as written (a Chinese numeral folds to a digit but is no word).
        left_at = np.maximum(start - 1, 0)
        left_word = (folded[left_at] < 0x80) & _WORD_CHAR[np.minimum(folded[left_at], 0x7F)]
        left_word &= norm.original[left_at] < 0x2E80
        left_word = np.where(start > 0, left_word, word_before)
        right_at = np.minimum(end, size - 1)
        right_word = (folded[right_at] < 0x80) & _WORD_CHAR[np.minimum(folded[right_at], 0x7F)]
        right_word &= norm.original[right_at] < 0x2E80
        right_bad = np.where(end >= size, not final, right_word)
        rejected = (self._needs_left[slots] & left_word) | (self._needs_right[slots] & right_bad)
        if not rejected.any():
            return hits
        return [hits[i] for i in np.flatnonzero(~rejected).tolist()]

    def _finding(self, number: int, variant: str, text: str, a: int, b: int) -> Finding:
        entry = self.entries[number]
        return Finding(
            detector=self.name,
            category=entry.category,
            score=min(1.0, max(0.0, entry.severity / 5)),
            span=(a, b),
            evidence=text[a:b][:MAX_EVIDENCE],
            rule=entry.id,
            variant=variant,
        )

    # --- streaming -----------------------------------------------------------------------------

    def safe_end(self, text: str, start: int) -> int:
        """The original index before which no match can begin, however ``text`` continues.

        A match is at most ``max_len`` normalised characters long and begins on a kept character,
        so everything before the ``max_len``-th last kept character (and every trailing skip
        character run before it) can go out.
        """
        pattern_safe = max(start, len(text) - STREAM_PATTERN_WINDOW) if self.has_patterns else len(text)
        if not self._has_terms:
            return pattern_safe
        norm = normalize(text[start:])
        keep = self.max_len
        if len(norm) == 0:
            term_safe = len(text)
        elif len(norm) < keep:
            term_safe = start + int(norm.starts[0])
        else:
            term_safe = start + int(norm.starts[len(norm) - keep])
        return min(term_safe, pattern_safe)


def _automaton(patterns: list[bytes]) -> ahocorasick_rs.BytesAhoCorasick | None:
    if not patterns:
        return None
    return ahocorasick_rs.BytesAhoCorasick(
        patterns,
        matchkind=ahocorasick_rs.MATCHKIND_STANDARD,
        implementation=ahocorasick_rs.Implementation.ContiguousNFA,
    )


class _Edges:
    """Per match: does a Latin letter or digit touch it on the left / right in the original, and
    where is it split by skipped characters? Looked up per match (a few scalar reads), not for the
    whole text: matches needing it are few, and whole-array passes cost more than the scan."""

    def __init__(self, norm: Normalized, text: str, window: str, offset: int) -> None:
        self.starts = norm.starts
        self.ends = norm.ends
        self.folded = norm.folded
        self.window = window
        # The character before the window (a stream's earlier text) counts for the first match.
        self.word_before_window = bool(offset) and _is_word_char(_fold_char(text[offset - 1]))

    def _word(self, i: int) -> bool:
        """A Latin letter or digit as written (a Chinese numeral folds to a digit but is no word char)."""
        if i < 0 or i >= len(self.window):
            return False
        folded = int(self.folded[i])
        return folded < 0x80 and bool(_WORD_CHAR[folded]) and ord(self.window[i]) < 0x2E80

    def accepts(self, target: _Target, a: int, b: int, final: bool) -> bool:
        if target.left_boundary:
            start = int(self.starts[a])
            if (self._word(start - 1)) if start > 0 else self.word_before_window:
                return False
        if target.right_boundary:
            end = int(self.ends[b - 1])
            at_end = end >= len(self.window)
            if (at_end and not final) or (not at_end and self._word(end)):
                return False
        if target.latin and b - a > 1:
            # A Latin match may be split only at the term's own breaks, or between every letter
            # ("b o m b"); "the cat" must not read as "thecat".
            split = set((np.flatnonzero(self.starts[a + 1 : b] > self.ends[a : b - 1]) + 1).tolist())
            if target.must_split and not target.breaks <= split and len(split) != b - a - 1:
                return False
            if split and len(split) != b - a - 1 and not target.breaks >= split:
                return False
        return True


_PREFILTER_MIN_HITS = 8
"""Below this many candidates the per-match checks are cheaper than the vectorised pass."""

_WORD_CHAR = np.zeros(0x80, dtype=bool)
for _c in "0123456789abcdefghijklmnopqrstuvwxyz":
    _WORD_CHAR[ord(_c)] = True


def _fold_char(ch: str) -> str:
    cp = ord(ch)
    table = fold_table()
    if cp < table.size and table[cp]:
        return chr(int(table[cp]))
    return ch


def fold_keep(text: str) -> str:
    """Length-preserving fold (skip characters kept as they are) for patterns."""
    table = fold_table()
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    clipped = np.minimum(cps, table.size - 1)
    folded = np.where((cps < table.size) & (table[clipped] != 0), table[clipped], cps)
    return folded.astype(np.uint32).tobytes().decode("utf-32-le")
