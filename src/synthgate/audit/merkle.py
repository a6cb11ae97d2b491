"""Merkle tree primitives for the tamper-evident audit log (RFC 6962 / RFC 9162 §2.1, SHA-256).

Everything here is pure: functions take leaf hashes (``leaf_hash(entry_bytes)``) and return hashes
or proofs, so the storage layer can decide where the leaves and interior nodes live.

Tree shape, as defined by RFC 9162 §2.1.1: a tree of ``n > 1`` leaves is split at ``k``, the largest
power of two strictly smaller than ``n``; the left subtree (``k`` leaves) is therefore always perfect
and only the right edge of the tree can be ragged. This is what makes the level-by-level root
computation, the compact range and the proof algorithms below agree with the recursive definition.

Domain separation (``0x00`` for leaves, ``0x01`` for interior nodes) is what stops an interior node
from being passed off as a leaf (second-preimage attack); never hash raw entries with ``node_hash``.

Error convention: impossible coordinates (negative sizes, ``index >= size``, ``old_size > new_size``,
a size larger than the list of leaves, hashes that are not 32 bytes where we compute) raise
``ValueError``. A proof that is merely wrong makes the ``verify_*`` functions return ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) — the root of the empty tree is the hash of the empty string (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)`` of one log entry."""
    return _sha256(_LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``."""
    _check_hash(left, "left")
    _check_hash(right, "right")
    return _sha256(_NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
        length = len(value) if isinstance(value, bytes | bytearray | memoryview) else type(value).__name__
        raise ValueError(f"{what} must be a {HASH_SIZE}-byte hash, got {length!r}")


def _check_hashes(hashes: Sequence[bytes], what: str = "leaf hashes") -> None:
    """Check that every element is a 32-byte hash.

    ``set(map(len, ...))`` keeps the common, valid case at C speed (about 15 ms per million
    hashes); the slow scan only runs to build the error message.
    """
    lengths = set(map(len, hashes))
    if lengths and lengths != {HASH_SIZE}:
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"{what}[{i}] must be a {HASH_SIZE}-byte hash, got {len(h)} bytes")


def _check_size(value: int, what: str) -> None:
    # bool is an int subclass; True as a tree size is always a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")


def split_point(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------------------------------
# Tree head
# --------------------------------------------------------------------------------------------------


def _mth(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-validated leaf hashes, computed level by level.

    Pairing neighbours and promoting an unpaired last node unchanged to the next level yields
    exactly the RFC tree: because the left subtree of every split is perfect, the only node that
    can lack a sibling on a level is the right-most one, and RFC 9162 hashes it in unchanged one
    level higher. The pairing runs in a list comprehension because per-node Python-level work is
    the cost that dominates (about 0.4 s per million leaves).
    """
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    sha = _sha256
    prefix = _NODE_PREFIX
    level: Sequence[bytes] = hashes
    while n > 1:
        it = iter(level)  # zip(it, it) pairs neighbours; an odd last node is left over on purpose
        paired = [sha(prefix + left + right).digest() for left, right in zip(it, it, strict=False)]
        if n & 1:
            paired.append(level[-1])
        level = paired
        n = len(level)
    return bytes(level[0])


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash MTH(D[n]) of a list of leaf hashes (``EMPTY_ROOT`` if empty).

    Iterative and O(n) time; memory peaks at about half the input (one level at a time).
    """
    _check_hashes(hashes)
    return _mth(hashes)


# --------------------------------------------------------------------------------------------------
# Compact range
# --------------------------------------------------------------------------------------------------


class CompactRange:
    """The right frontier of a growing Merkle tree: enough state to append leaves and get the root.

    A tree of ``size`` leaves decomposes into perfect subtrees, one per set bit of ``size``, laid
    out from the largest (leftmost) to the smallest (rightmost). Keeping only the roots of those
    subtrees — at most 64 hashes for any 64-bit size — is enough to compute the tree root and to
    keep appending, so a database can persist ``(size, to_hashes())`` next to the log and extend
    the tree without rereading old leaves. Appending works like incrementing a binary counter:
    each carry merges two equal-size subtrees into one ``node_hash``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Rebuild a range from ``size`` and the list returned by :meth:`to_hashes`.

        The count of hashes must equal the number of set bits in ``size``; anything else means the
        stored state is corrupt or belongs to a different size, so it is rejected rather than
        silently producing a wrong root later.
        """
        _check_size(size, "size")
        expected = size.bit_count()
        if len(hashes) != expected:
            raise ValueError(f"a compact range of size {size} has {expected} hashes, got {len(hashes)}")
        _check_hashes(hashes, "hashes")
        rng = cls()
        rng._size = size
        rng._hashes = [bytes(h) for h in hashes]
        return rng

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """Build the range for a tree made of ``leaf_hashes``."""
        rng = cls()
        rng.extend(leaf_hashes)
        return rng

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Alias of :meth:`from_hashes` (pairs with :meth:`state`)."""
        return cls.from_hashes(size, hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def to_hashes(self) -> list[bytes]:
        """Return the subtree roots, largest subtree first (a copy; store it with :attr:`size`)."""
        return list(self._hashes)

    def state(self) -> list[bytes]:
        """Alias of :meth:`to_hashes` (pairs with :meth:`from_state`)."""
        return self.to_hashes()

    def copy(self) -> CompactRange:
        """Return an independent copy (e.g. to compute a tentative root before committing)."""
        return CompactRange.from_hashes(self._size, self._hashes)

    def _push(self, subtree_root: bytes, subtree_size: int) -> None:
        """Append a perfect subtree of ``subtree_size`` (a power of two) leaves.

        Only valid when the current size is a multiple of ``subtree_size``, i.e. the subtree starts
        on its own alignment boundary; callers guarantee that.
        """
        carry = self._size >> (subtree_size.bit_length() - 1)
        node = subtree_root
        hashes = self._hashes
        while carry & 1:
            node = _sha256(_NODE_PREFIX + hashes.pop() + node).digest()
            carry >>= 1
        hashes.append(node)
        self._size += subtree_size

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash and return its index in the tree."""
        _check_hash(leaf_hash, "leaf_hash")
        index = self._size
        self._push(bytes(leaf_hash), 1)
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes.

        Rather than appending one leaf at a time, the input is cut into the largest perfect
        subtrees that are aligned with the current size; each chunk's root is computed with the
        fast level-by-level routine and merged in as a single node. The result is identical to
        repeated :meth:`append`, at the speed of :func:`root_from_leaf_hashes`.
        """
        if isinstance(leaf_hashes, bytes | bytearray | memoryview):
            # A single hash is itself a sequence (of ints); catch the easy mix-up with append().
            raise TypeError("extend() takes an iterable of leaf hashes; use append() for a single hash")
        hashes = leaf_hashes if isinstance(leaf_hashes, Sequence) else list(leaf_hashes)
        _check_hashes(hashes)
        pos, end = 0, len(hashes)
        while pos < end:
            remaining = end - pos
            chunk = 1 << (remaining.bit_length() - 1)
            if self._size:
                # The chunk must not straddle a boundary of the existing subtrees: it can be at most
                # as large as the smallest subtree already present (the lowest set bit of size).
                chunk = min(chunk, self._size & -self._size)
            self._push(_mth(hashes[pos : pos + chunk]), chunk)
            pos += chunk

    def root(self) -> bytes:
        """Return the Merkle tree hash of all leaves appended so far.

        Subtree roots are folded right to left, mirroring how RFC 9162 nests the ragged right edge.
        """
        if not self._hashes:
            return EMPTY_ROOT
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = _sha256(_NODE_PREFIX + left + node).digest()
        return node

    def __len__(self) -> int:
        return self._size

    # Defining __eq__ leaves __hash__ as None, which is wanted: the range is mutable.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# --------------------------------------------------------------------------------------------------
# Inclusion proofs (RFC 9162 §2.1.3)
# --------------------------------------------------------------------------------------------------


def _check_tree(hashes: Sequence[bytes], size: int) -> None:
    if size > len(hashes):
        raise ValueError(f"tree size {size} exceeds the {len(hashes)} leaf hashes supplied")
    _check_hashes(hashes[:size])


def inclusion_proof(hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return the audit path PATH(index, D[size]) for leaf ``index`` in the tree of the first ``size``
    leaf hashes, ordered from the leaf's sibling up to the child of the root (RFC 9162 §2.1.3.1).

    The recursive definition is walked top-down without recursion: at each split the sibling
    subtree's root goes into the proof and the walk descends into the half holding the leaf. The
    sibling subtrees are disjoint, so building a proof costs at most ``size`` hash operations.
    """
    _check_size(size, "size")
    _check_size(index, "index")
    if index >= size:
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    _check_tree(hashes, size)
    return inclusion_path(index, size, lambda lo, hi: _mth(hashes[lo:hi]))


def inclusion_path(index: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The audit path's walk, given ``subtree(lo, hi)`` = MTH of leaves ``lo .. hi-1``; arguments
    are checked by the caller. Shared by the in-memory proofs here and the stored tree levels in
    :mod:`synthgate.audit.proofs`."""
    proof: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = split_point(hi - lo)
        if m < k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
    proof.reverse()  # collected root-first; RFC order is leaf-first
    return proof


def _root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """Recompute the root from an audit path per RFC 9162 §2.1.3.2, or ``None`` if malformed.

    ``fn`` tracks the node's position and ``sn`` the last position on the same level. A right child
    (odd ``fn``) or a node on the ragged right edge (``fn == sn``) takes the proof element as its left
    sibling; climbing the right edge also skips levels where the node had no sibling at all.
    """
    fn, sn = index, size - 1
    node = bytes(leaf)
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return None  # proof longer than the path to the root, or not a hash
        if fn & 1 or fn == sn:
            node = _sha256(_NODE_PREFIX + p + node).digest()
            while fn and not fn & 1:  # on the right edge: skip levels where the node has no sibling
                fn >>= 1
                sn >>= 1
        else:
            node = _sha256(_NODE_PREFIX + node + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None  # proof too short
    return node


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Return whether ``proof`` shows that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    Raises ``ValueError`` when ``index`` is not a valid position in a tree of ``size`` leaves (there
    is nothing to verify); returns ``False`` for any proof that does not check out.
    """
    _check_size(size, "size")
    _check_size(index, "index")
    if index >= size:
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    computed = _root_from_inclusion_proof(leaf_hash, index, size, proof)
    return computed is not None and computed == bytes(root)


# --------------------------------------------------------------------------------------------------
# Consistency proofs (RFC 9162 §2.1.4)
# --------------------------------------------------------------------------------------------------


def _check_sizes(old_size: int, new_size: int) -> None:
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} is larger than new_size {new_size}")


def consistency_proof(hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) showing the first ``old_size`` leaves are a prefix of the
    first ``new_size`` leaves (RFC 9162 §2.1.4.1).

    For ``old_size == 0`` or ``old_size == new_size`` the proof is empty: there is nothing to prove
    beyond comparing roots, which :func:`verify_consistency` does.

    Like :func:`inclusion_proof`, SUBPROOF is walked top-down: while the old tree fits in the left
    half, the right half's root is recorded; once the walk goes right, the left half is shared
    with the old tree and its root is recorded instead, and the flag ``whole`` drops to false
    because the remaining old subtree is no longer the entire old tree (so its own root must also
    be included, since the verifier does not already know it).
    """
    _check_sizes(old_size, new_size)
    _check_tree(hashes, new_size)
    return consistency_path(old_size, new_size, lambda lo, hi: _mth(hashes[lo:hi]))


def consistency_path(old_size: int, new_size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The consistency proof's walk, given ``subtree(lo, hi)``; arguments are checked by the caller."""
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(subtree(lo, hi))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            whole = False
    proof.reverse()  # collected root-first; RFC order is deepest-first
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether ``proof`` shows the tree ``(old_size, old_root)`` is a prefix of
    ``(new_size, new_root)`` (RFC 9162 §2.1.4.2).

    Edge cases the RFC leaves implicit: equal sizes are consistent only with an empty proof and
    equal roots; the empty tree is a prefix of every tree, but only with an empty proof and only
    if ``old_root`` really is the empty-tree root (anything else is a false claim about size 0).

    Raises ``ValueError`` for negative sizes or ``old_size > new_size``.
    """
    _check_sizes(old_size, new_size)
    if len(old_root) != HASH_SIZE or len(new_root) != HASH_SIZE:
        return False
    old_root, new_root = bytes(old_root), bytes(new_root)
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = [bytes(p) for p in proof]
    # When the old tree is a perfect subtree its root is not sent (it is the starting node of
    # both computations), so put the known old root in front.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Skip the levels where the old tree's last node is a right child of a node entirely inside
    # the old tree: the proof starts at the root of the largest such subtree.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_node = new_node = path[0]
    for c in path[1:]:
        if sn == 0:
            return False  # proof longer than needed
        if fn & 1 or fn == sn:
            old_node = _sha256(_NODE_PREFIX + c + old_node).digest()
            new_node = _sha256(_NODE_PREFIX + c + new_node).digest()
            while fn and not fn & 1:  # on the right edge: skip levels where the node has no sibling
                fn >>= 1
                sn >>= 1
        else:
            # Nodes to the right of the old tree only contribute to the new root.
            new_node = _sha256(_NODE_PREFIX + new_node + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_node == old_root and new_node == new_root
