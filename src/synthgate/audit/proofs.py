"""Proofs over a whole log held in memory: every perfect subtree root computed once, so each proof
costs O(log n) lookups instead of the O(n) hashing of :func:`synthgate.audit.merkle.inclusion_proof`.

Levels are stored as one ``bytes`` object per level (32-byte records back to back): a list of
ten million separate ``bytes`` objects costs twice the memory and far more time to build.

In an RFC 9162 tree every perfect subtree that appears in a proof is aligned (its first leaf is a
multiple of its size), so it is exactly one node of one level; only subtrees on the ragged right
edge of a tree are not perfect, and those are assembled from at most ``log n`` perfect ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from synthgate.audit.merkle import EMPTY_ROOT, HASH_SIZE, consistency_path, inclusion_path, split_point

__all__ = ["TreeLevels"]

_NODE = b"\x01"


class TreeLevels:
    """All perfect-subtree roots of a tree of leaf hashes; answers proofs for any size up to ``size``."""

    def __init__(self, leaf_hashes: Sequence[bytes] | bytes) -> None:
        leaves = leaf_hashes if isinstance(leaf_hashes, bytes) else b"".join(leaf_hashes)
        if len(leaves) % HASH_SIZE:
            raise ValueError("leaf hashes must be 32 bytes each")
        self.size = len(leaves) // HASH_SIZE
        self.levels: list[bytes] = [leaves]
        sha = hashlib.sha256
        level = leaves
        while len(level) >= 2 * HASH_SIZE:
            pairs = len(level) // (2 * HASH_SIZE)
            level = b"".join(
                sha(_NODE + level[i : i + 2 * HASH_SIZE]).digest()
                for i in range(0, pairs * 2 * HASH_SIZE, 2 * HASH_SIZE)
            )
            self.levels.append(level)

    def leaf(self, index: int) -> bytes:
        return self.node(0, index)

    def node(self, level: int, index: int) -> bytes:
        data = self.levels[level]
        start = index * HASH_SIZE
        if start + HASH_SIZE > len(data):
            raise ValueError(f"no node {index} on level {level}")
        return data[start : start + HASH_SIZE]

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``lo .. hi-1`` where ``lo`` starts an RFC subtree (aligned)."""
        n = hi - lo
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            height = n.bit_length() - 1
            return self.node(height, lo >> height)
        k = split_point(n)
        return hashlib.sha256(_NODE + self.subtree(lo, lo + k) + self.subtree(lo + k, hi)).digest()

    def root(self, size: int | None = None) -> bytes:
        return self.subtree(0, self.size if size is None else self._check_size(size))

    def _check_size(self, size: int) -> int:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 audit path, leaf-first (the walk of ``merkle.inclusion_path``)."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
        return inclusion_path(index, size, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 proof that the first ``old_size`` leaves are a prefix of ``new_size``."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} is outside 0..{new_size}")
        return consistency_path(old_size, new_size, self.subtree)
