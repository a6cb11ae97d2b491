"""Evasion-resistant text normalisation with a map back to the original text.

Terms and screened text go through the same two steps, so a match in the normalised form is a
match of the term however it was disguised:

1. **fold** each code point to one code point: NFKC (full/half width, circled and parenthesised
   digits ①⑴⒈, mathematical letters), case, traditional → simplified (OpenCC's character tables,
   shipped in ``opencc-python-reimplemented``), cross-script look-alikes (Cyrillic/Greek letters
   that look Latin) and Chinese digit styles (一/壹 → 1);
2. **compact**: drop skip characters (spaces, punctuation, symbols, zero-width and other format
   characters, combining marks) and collapse runs of one repeated character.

Both steps run vectorised over a code-point array (numpy), so normalising is linear and runs at
memory speed; the arrays ``starts``/``ends`` map every normalised character back to the first and
last original character of its run.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt

TABLE_VERSION = "1"
"""Bumped whenever the fold or skip tables change: compiled libraries record it."""

_PLANES = 0x30000
"""Folding is computed for the BMP and the two supplementary planes that carry letters, symbols
and CJK extension characters; code points above fold to themselves and are never skipped."""

SKIP = 0
"""Value of the fold table for a skip character."""

_CHINESE_DIGITS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "壹": "1",
    "弌": "1",
    "二": "2",
    "贰": "2",
    "貳": "2",
    "两": "2",
    "三": "3",
    "叁": "3",
    "參": "3",
    "四": "4",
    "肆": "4",
    "五": "5",
    "伍": "5",
    "六": "6",
    "陆": "6",
    "陸": "6",
    "七": "7",
    "柒": "7",
    "八": "8",
    "捌": "8",
    "九": "9",
    "玖": "9",
}

# Letters of other scripts that render like Latin letters (the usual homoglyph swaps).
_LOOKALIKES = dict(
    zip(
        "аеорсухіјѕԁԛԝвкмнтьαβεικνορτυχγωϲ",
        "aeopcyxijsdqwbkmhtbabeiknoptuxywc",
        strict=True,
    )
)


def _opencc_pairs() -> dict[str, str]:
    """Single-character traditional/variant → simplified pairs from the OpenCC tables."""
    pairs: dict[str, str] = {}
    base = resources.files("opencc") / "dictionary"
    for name in ("TWVariantsRev.txt", "HKVariantsRev.txt", "TSCharacters.txt"):
        for line in (base / name).read_text(encoding="utf-8").splitlines():
            source, _, targets = line.partition("\t")
            target = targets.split(" ")[0] if targets else ""
            if len(source) == 1 and len(target) == 1:
                pairs[source] = pairs.get(target, target)
    return pairs


def _is_skip(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "PSZM" or cat in ("Cc", "Cf") or ch.isspace()


@lru_cache(maxsize=1)
def fold_table() -> npt.NDArray[np.uint32]:
    """Code point → folded code point, or ``SKIP``. Built once per process (~0.3 s)."""
    table = np.arange(_PLANES, dtype=np.uint32)
    simplified = _opencc_pairs()
    for cp in _codepoints_to_fold():
        ch = chr(cp)
        folded = unicodedata.normalize("NFKC", ch).casefold()
        if len(folded) != 1:
            # ⒈ → "1." or ⑽ → "(10)": keep the one letter or digit that carries the meaning.
            core = [c for c in folded if not _is_skip(c)]
            folded = core[0] if len(core) == 1 else ch.casefold() if len(ch.casefold()) == 1 else ch
        folded = simplified.get(folded, folded)
        folded = _CHINESE_DIGITS.get(folded, folded)
        folded = _LOOKALIKES.get(folded, folded)
        if _is_skip(folded):
            table[cp] = SKIP
        elif folded != ch:
            table[cp] = ord(folded)
    # Han ideographs and Hangul syllables are letters NFKC leaves alone: only the Chinese maps apply.
    for source, target in {**simplified, **_CHINESE_DIGITS}.items():
        cp = ord(source)
        if cp < _PLANES and _in_plain_blocks(cp):
            table[cp] = ord(_CHINESE_DIGITS.get(target, target))
    table[0] = SKIP
    return table


_PLAIN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xD800, 0xDFFF), (0x20000, 0x2F7FF))
"""Ranges where every code point is an unassigned, surrogate or plain letter (identity under NFKC
and case folding): skipping them halves the time to build the table."""


def _in_plain_blocks(cp: int) -> bool:
    return any(a <= cp <= b for a, b in _PLAIN_BLOCKS)


def _codepoints_to_fold() -> list[int]:
    points: list[int] = []
    start = 0
    for a, b in _PLAIN_BLOCKS:
        points.extend(range(start, a))
        start = b + 1
    points.extend(range(start, _PLANES))
    return points


def _codepoints(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class Normalized:
    """The normalised form; character i of it came from ``original[starts[i]:ends[i]]``.

    A plain slotted class (not a frozen dataclass): it is built once per screened text, and on a
    300-character prompt its construction showed in the profile.
    """

    __slots__ = ("codes", "counts", "ends", "folded", "original", "starts")

    def __init__(
        self,
        starts: npt.NDArray[np.int64],
        ends: npt.NDArray[np.int64],
        folded: npt.NDArray[np.uint32],
        codes: npt.NDArray[np.uint32],
        counts: npt.NDArray[np.int64],
        original: npt.NDArray[np.uint32],
    ) -> None:
        self.starts = starts
        self.ends = ends
        self.folded = folded
        """The original text folded character by character (``SKIP`` for skip characters)."""
        self.codes = codes
        """The normalised text as code points."""
        self.counts = counts
        """How many times each character of the normalised text was repeated in its run."""
        self.original = original
        """The original text as code points."""

    @property
    def text(self) -> str:
        """The normalised text (decoded on demand: scanning only needs ``codes``)."""
        return self.codes.tobytes().decode("utf-32-le") if self.codes.size else ""

    def __len__(self) -> int:
        return int(self.codes.size)


@lru_cache(maxsize=1)
def _full_table() -> npt.NDArray[np.uint32]:
    """The fold table over every code point (4.4 MB): one gather folds a text, no range checks."""
    full = np.arange(0x110000, dtype=np.uint32)
    full[:_PLANES] = fold_table()
    return full


def normalize(text: str) -> Normalized:
    # Every step is one numpy call over the whole text: a 300-character prompt costs a dozen calls
    # (~15 µs), a megabyte runs at memory speed.
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    folded = _full_table()[cps]
    kept = (folded != SKIP).nonzero()[0]
    chars = folded[kept]
    if chars.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Normalized(empty, empty, folded, chars, empty, cps)
    # A run of one repeated character (skip characters between them ignored) counts once.
    changes = (chars[1:] != chars[:-1]).nonzero()[0]
    if changes.size == chars.size - 1:  # no repeats: every kept character is its own run
        return Normalized(
            kept,
            kept + 1,
            folded,
            chars,
            np.ones(chars.size, dtype=np.int64),
            cps,
        )
    first = np.empty(changes.size + 1, dtype=np.int64)
    first[0] = 0
    first[1:] = changes + 1
    last = np.empty_like(first)
    last[:-1] = changes
    last[-1] = chars.size - 1
    compact = chars[first]
    return Normalized(
        kept[first],
        kept[last] + 1,
        folded,
        compact,
        last - first + 1,
        cps,
    )


def normalize_term(term: str) -> str:
    return normalize(term).text
