"""Known-content hash banks: SHA-256 for exact files, PDQ for images and video frames.

A PDQ match is a Hamming distance ≤ 31 between 256-bit hashes. The index is a multi-index
hash: the 256 bits are cut into 16 chunks of 16 bits, and by the pigeonhole principle two hashes
within distance 31 agree on some chunk up to one bit. A query therefore probes, per chunk, its
own value and its 16 one-bit neighbours (272 sorted-array look-ups in all), and verifies the few
candidates with an exact XOR-popcount. At 1,000,000 hashes a bucket holds ~15 rows, so a query
touches a few thousand rows instead of a million.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from synthgate.moderation.findings import Finding

PDQ_MATCH_DISTANCE = 31
_CHUNKS = 16
_FLIPS = np.array([0] + [1 << i for i in range(16)], dtype=np.uint16)


def pdq_hex_to_words(hexes: Sequence[str]) -> npt.NDArray[np.uint64]:
    """64-hex-digit PDQ hashes → (n, 4) uint64 words (big-endian bit order)."""
    raw = bytes.fromhex("".join(hexes))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)


def pdq_bits_to_hex(bits: npt.NDArray[np.integer]) -> str:
    """The 256 0/1 values ``pdqhash.compute`` returns → 64 hex digits."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def pdq_of_image(pixels: npt.NDArray[np.uint8]) -> tuple[str, int]:
    """PDQ hash (hex) and quality of an RGB image array."""
    import pdqhash  # type: ignore[import-untyped]

    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return pdq_bits_to_hex(bits), int(quality)


def _popcount(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    return np.bitwise_count(x)


class PdqIndex:
    """Immutable once built; a new bank version builds a new index and swaps it in whole."""

    def __init__(self, words: npt.NDArray[np.uint64], labels: Sequence[int] | None = None) -> None:
        self.words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1, 4)
        self.labels = np.asarray(labels if labels is not None else np.arange(len(self.words)), dtype=np.int64)
        # chunk c of a hash: 16 bits, c = 0 the most significant of word 0.
        self._sorted: list[tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]] = []
        for c in range(_CHUNKS):
            values = self._chunk(self.words, c)
            order = np.argsort(values, kind="stable")
            self._sorted.append((values[order], order.astype(np.int64)))

    @staticmethod
    def _chunk(words: npt.NDArray[np.uint64], c: int) -> npt.NDArray[np.uint16]:
        shift = np.uint64(48 - 16 * (c % 4))
        return ((words[:, c // 4] >> shift) & np.uint64(0xFFFF)).astype(np.uint16)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def nbytes(self) -> int:
        return self.words.nbytes + self.labels.nbytes + sum(v.nbytes + r.nbytes for v, r in self._sorted)

    def query(
        self, words: npt.NDArray[np.uint64], max_distance: int = PDQ_MATCH_DISTANCE
    ) -> list[tuple[int, int]]:
        """(label, distance) of every stored hash within ``max_distance`` of one query hash."""
        if max_distance > 2 * _CHUNKS - 1:
            raise ValueError("the index finds distances up to 31")
        query = np.asarray(words, dtype=np.uint64).reshape(1, 4)
        found: list[npt.NDArray[np.int64]] = []
        for c in range(_CHUNKS):
            values, rows = self._sorted[c]
            probes = self._chunk(query, c)[0] ^ _FLIPS
            left = np.searchsorted(values, probes, side="left")
            right = np.searchsorted(values, probes, side="right")
            for a, b in zip(left.tolist(), right.tolist(), strict=True):
                if b > a:
                    found.append(rows[a:b])
        if not found:
            return []
        candidates = np.unique(np.concatenate(found))
        distances = _popcount(self.words[candidates] ^ query).sum(axis=1)
        hit = distances <= max_distance
        return list(
            zip(self.labels[candidates[hit]].tolist(), distances[hit].astype(int).tolist(), strict=True)
        )


@dataclass(frozen=True)
class BankEntry:
    id: str
    kind: str  # sha256 | pdq
    value: str
    category: str
    severity: int = 5
    bank: str = "default"


class HashBank:
    """SHA-256 and PDQ entries of the feature library, compiled for look-up."""

    name = "hash-bank"

    def __init__(self, entries: Iterable[BankEntry], version: str = "0") -> None:
        self.version = version
        self.entries = list(entries)
        self._sha: dict[str, int] = {}
        pdq_rows: list[int] = []
        for i, entry in enumerate(self.entries):
            if entry.kind == "sha256":
                self._sha[entry.value.lower()] = i
            elif entry.kind == "pdq":
                pdq_rows.append(i)
        words = (
            pdq_hex_to_words([self.entries[i].value for i in pdq_rows])
            if pdq_rows
            else np.zeros((0, 4), dtype=np.uint64)
        )
        self.pdq = PdqIndex(words, pdq_rows)

    def _finding(self, number: int, score: float, evidence: str, variant: str) -> Finding:
        entry = self.entries[number]
        return Finding(
            self.name,
            entry.category,
            score * entry.severity / 5,
            None,
            f"bank {entry.bank}: {evidence}",
            entry.id,
            variant,
        )

    def scan_file(
        self,
        data: bytes,
        pdq_hex: str | None = None,
        *,
        banks: frozenset[str] | None = None,
        digest: str | None = None,
    ) -> list[Finding]:
        """Matches of one file (and, for images and video, its PDQ hash) in the ``banks`` enabled
        (None: every bank). One index serves every bank; the bank filter runs on the few hits."""
        digest = digest or hashlib.sha256(data).hexdigest()
        return self.scan_hashes(digest, [pdq_hex] if pdq_hex else [], banks)

    def scan_hashes(
        self, digest: str, pdq_hexes: Sequence[str], banks: frozenset[str] | None = None
    ) -> list[Finding]:
        findings = []
        if digest in self._sha and (banks is None or self.entries[self._sha[digest]].bank in banks):
            findings.append(self._finding(self._sha[digest], 1.0, f"sha256 {digest[:16]}…", "sha256"))
        if len(self.pdq):
            best: dict[int, int] = {}
            for pdq_hex in pdq_hexes:
                for label, distance in self.pdq.query(pdq_hex_to_words([pdq_hex])[0]):
                    if banks is not None and self.entries[label].bank not in banks:
                        continue
                    best[label] = min(distance, best.get(label, distance))
            for label, distance in sorted(best.items()):
                score = 1.0 - distance / 64
                findings.append(self._finding(label, score, f"pdq distance {distance}", "pdq"))
        return findings
