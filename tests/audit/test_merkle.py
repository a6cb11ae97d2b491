"""Tests for synthgate.audit.merkle against naive transcriptions of the RFC 9162 definitions."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------------------------------
# Naive reference implementations: direct, recursive transcriptions of RFC 9162 §2.1, using hashlib
# directly so that they share no code with the module under test.
# --------------------------------------------------------------------------------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: list[bytes]) -> bytes:
    """MTH over leaf hashes."""
    if not d:
        return _sha(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return _sha(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [_sha(b"\x00" + i.to_bytes(4, "big")) for i in range(n)]


def flip(data: bytes, pos: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[pos % len(out)] ^= 1 << bit
    return bytes(out)


LEAVES_300 = leaves(300)

# --------------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert leaf_hash(b"abc") == _sha(b"\x00abc")
    left, right = _sha(b"l"), _sha(b"r")
    assert node_hash(left, right) == _sha(b"\x01" + left + right)
    assert _sha(b"") == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


# The eight-entry test tree used by the Certificate Transparency implementations (RFC 6962 era),
# with the published roots of every prefix.
CT_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_ct_reference_roots() -> None:
    hashes = [leaf_hash(bytes.fromhex(x)) for x in CT_INPUTS]
    rng = CompactRange()
    for size, expected in enumerate(CT_ROOTS, start=1):
        rng.append(hashes[size - 1])
        assert root_from_leaf_hashes(hashes[:size]).hex() == expected
        assert naive_mth(hashes[:size]).hex() == expected
        assert rng.root().hex() == expected


def test_rfc_example_tree_of_seven() -> None:
    """The worked examples of RFC 6962 §2.1.3 (audit paths) and RFC 6962 §2.1.4 (consistency)."""
    d = [leaf_hash(f"d{i}".encode()) for i in range(7)]
    a, b, c, dd, e, f, j = d
    g, h, i = _sha(b"\x01" + a + b), _sha(b"\x01" + c + dd), _sha(b"\x01" + e + f)
    k, l_ = _sha(b"\x01" + g + h), _sha(b"\x01" + i + j)
    root = _sha(b"\x01" + k + l_)
    assert root_from_leaf_hashes(d) == root

    assert inclusion_proof(d, 0, 7) == [b, h, l_]
    assert inclusion_proof(d, 3, 7) == [c, g, l_]
    assert inclusion_proof(d, 4, 7) == [f, j, k]
    assert inclusion_proof(d, 6, 7) == [i, k]

    hash0 = root_from_leaf_hashes(d[:3])
    hash1 = root_from_leaf_hashes(d[:4])
    hash2 = root_from_leaf_hashes(d[:6])
    assert consistency_proof(d, 3, 7) == [c, dd, g, l_]
    assert consistency_proof(d, 4, 7) == [l_]
    assert consistency_proof(d, 6, 7) == [i, j, k]
    assert verify_consistency(3, 7, hash0, root, [c, dd, g, l_])
    assert verify_consistency(4, 7, hash1, root, [l_])
    assert verify_consistency(6, 7, hash2, root, [i, j, k])


def test_root_matches_naive_for_all_small_sizes() -> None:
    for n in range(0, 130):
        assert root_from_leaf_hashes(LEAVES_300[:n]) == naive_mth(LEAVES_300[:n]), n


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_root_matches_naive(n: int) -> None:
    assert root_from_leaf_hashes(LEAVES_300[:n]) == naive_mth(LEAVES_300[:n])


# --------------------------------------------------------------------------------------------------
# Compact range
# --------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_compact_range_every_prefix_and_round_trip(n: int) -> None:
    hashes = LEAVES_300[:n]
    rng = CompactRange()
    assert rng.root() == EMPTY_ROOT
    for i, h in enumerate(hashes):
        assert rng.append(h) == i
        assert rng.size == len(rng) == i + 1
        assert rng.root() == root_from_leaf_hashes(hashes[: i + 1])
        stored = rng.to_hashes()
        assert len(stored) == rng.size.bit_count()
        restored = CompactRange.from_hashes(rng.size, stored)
        assert restored == rng
        assert restored.root() == rng.root()
    # A restored range keeps extending exactly like the original.
    restored = CompactRange.from_state(rng.size, rng.state())
    rest = LEAVES_300[n:]
    restored.extend(rest)
    assert restored.root() == root_from_leaf_hashes(LEAVES_300)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_compact_range_extend_in_chunks_equals_append(cuts: list[int]) -> None:
    points = sorted({0, 300, *cuts})
    bulk = CompactRange()
    for lo, hi in itertools.pairwise(points):
        bulk.extend(iter(LEAVES_300[lo:hi]))  # iterators work too
        one_by_one = CompactRange()
        for h in LEAVES_300[:hi]:
            one_by_one.append(h)
        assert bulk == one_by_one
        assert bulk.root() == naive_mth(LEAVES_300[:hi])


def test_compact_range_copy_is_independent() -> None:
    rng = CompactRange.from_leaf_hashes(LEAVES_300[:5])
    copy = rng.copy()
    copy.append(LEAVES_300[5])
    assert rng.size == 5 and copy.size == 6
    assert rng.root() == root_from_leaf_hashes(LEAVES_300[:5])


def test_compact_range_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="has 2 hashes"):
        CompactRange.from_hashes(5, [LEAVES_300[0]])
    with pytest.raises(ValueError, match="32-byte"):
        CompactRange.from_hashes(1, [b"short"])
    with pytest.raises(ValueError, match=">= 0"):
        CompactRange.from_hashes(-1, [])
    with pytest.raises(TypeError):
        CompactRange.from_hashes(True, [LEAVES_300[0]])
    with pytest.raises(ValueError, match="32-byte"):
        CompactRange().append(b"x" * 31)
    with pytest.raises(TypeError, match="append"):
        CompactRange().extend(LEAVES_300[0])
    with pytest.raises(ValueError, match=r"leaf hashes\[1\]"):
        CompactRange().extend([LEAVES_300[0], b"x"])


# --------------------------------------------------------------------------------------------------
# Inclusion proofs
# --------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_every_inclusion_proof_verifies_and_tampering_fails(size: int, data: st.DataObject) -> None:
    hashes = LEAVES_300[:size]
    root = root_from_leaf_hashes(hashes)
    for index in range(size):
        proof = inclusion_proof(LEAVES_300, index, size)
        assert verify_inclusion(hashes[index], index, size, proof, root)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(LEAVES_300, index, size)
    assert proof == naive_path(index, hashes)
    leaf = hashes[index]
    pos = data.draw(st.integers(min_value=0, max_value=31), label="byte")
    bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
    for n in range(len(proof)):
        bad = [*proof[:n], flip(proof[n], pos, bit), *proof[n + 1 :]]
        assert not verify_inclusion(leaf, index, size, bad, root)
    assert not verify_inclusion(leaf, index, size, proof, flip(root, pos, bit))
    assert not verify_inclusion(flip(leaf, pos, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, [*proof, proof[-1] if proof else root], root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
        assert not verify_inclusion(leaf, other, size, proof, root)


def test_inclusion_proof_for_older_tree_size() -> None:
    """Proofs can be made against any earlier size while more leaves exist."""
    for size in (1, 2, 3, 17, 64, 65):
        root = naive_mth(LEAVES_300[:size])
        for index in range(size):
            proof = inclusion_proof(LEAVES_300, index, size)
            assert proof == naive_path(index, LEAVES_300[:size])
            assert verify_inclusion(LEAVES_300[index], index, size, proof, root)


def test_interior_node_cannot_pose_as_leaf() -> None:
    """A short proof starting from an interior node reaches the root, but the path length betrays it."""
    hashes = LEAVES_300[:4]
    root = root_from_leaf_hashes(hashes)
    left = node_hash(hashes[0], hashes[1])
    right = node_hash(hashes[2], hashes[3])
    assert node_hash(left, right) == root
    assert not verify_inclusion(left, 0, 4, [right], root)


def test_proof_for_smaller_tree_does_not_verify_for_larger_size() -> None:
    for size in (1, 2, 4, 8, 32):
        root = root_from_leaf_hashes(LEAVES_300[:size])
        proof = inclusion_proof(LEAVES_300, 0, size)
        assert verify_inclusion(LEAVES_300[0], 0, size, proof, root)
        assert not verify_inclusion(LEAVES_300[0], 0, 2 * size, proof, root)
        old_root = root_from_leaf_hashes(LEAVES_300[: size // 2 or 1])
        if size > 1:
            cproof = consistency_proof(LEAVES_300, size // 2, size)
            assert verify_consistency(size // 2, size, old_root, root, cproof)
            assert not verify_consistency(size // 2, 2 * size, old_root, root, cproof)


def test_single_leaf_tree() -> None:
    leaf = LEAVES_300[0]
    assert inclusion_proof([leaf], 0, 1) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)


def test_inclusion_argument_errors() -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(LEAVES_300, 5, 5)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([], 0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        inclusion_proof(LEAVES_300, -1, 5)
    with pytest.raises(ValueError, match="exceeds"):
        inclusion_proof(LEAVES_300[:3], 0, 4)
    with pytest.raises(ValueError, match="out of range"):
        verify_inclusion(LEAVES_300[0], 3, 3, [], EMPTY_ROOT)
    with pytest.raises(ValueError, match=">= 0"):
        verify_inclusion(LEAVES_300[0], 0, -1, [], EMPTY_ROOT)
    # Wrong-length hashes in a proof are a failed proof, not an exception.
    assert not verify_inclusion(LEAVES_300[0], 0, 2, [b"x" * 31], EMPTY_ROOT)
    assert not verify_inclusion(LEAVES_300[0], 0, 1, [], b"short")


# --------------------------------------------------------------------------------------------------
# Consistency proofs
# --------------------------------------------------------------------------------------------------


def _check_consistency_pair(old: int, new: int, old_root: bytes, new_root: bytes, pos: int, bit: int) -> None:
    proof = consistency_proof(LEAVES_300, old, new)
    if 0 < old < new:
        assert proof == naive_subproof(old, LEAVES_300[:new], True), (old, new)
    else:
        assert proof == []
    assert verify_consistency(old, new, old_root, new_root, proof), (old, new)
    for n in range(len(proof)):
        bad = [*proof[:n], flip(proof[n], pos, bit), *proof[n + 1 :]]
        assert not verify_consistency(old, new, old_root, new_root, bad), (old, new, n)
    assert not verify_consistency(old, new, flip(old_root, pos, bit), new_root, proof), (old, new)
    if old > 0:  # the empty tree is a prefix of every tree, whatever its root
        assert not verify_consistency(old, new, old_root, flip(new_root, pos, bit), proof), (old, new)
    assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root]), (old, new)
    if proof:
        assert not verify_consistency(old, new, old_root, new_root, proof[:-1]), (old, new)
        assert not verify_consistency(old, new, old_root, new_root, proof[1:]), (old, new)


def test_consistency_all_pairs_small_trees() -> None:
    roots = [naive_mth(LEAVES_300[:n]) for n in range(41)]
    for new in range(41):
        for old in range(new + 1):
            _check_consistency_pair(old, new, roots[old], roots[new], pos=old + new, bit=(old * 3 + new) % 8)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=0, max_value=300).flatmap(
        lambda new: st.tuples(st.integers(min_value=0, max_value=new), st.just(new))
    ),
    st.integers(min_value=0, max_value=31),
    st.integers(min_value=0, max_value=7),
)
def test_consistency_random_pairs(pair: tuple[int, int], pos: int, bit: int) -> None:
    old, new = pair
    old_root, new_root = naive_mth(LEAVES_300[:old]), naive_mth(LEAVES_300[:new])
    _check_consistency_pair(old, new, old_root, new_root, pos, bit)


def test_consistency_detects_fork() -> None:
    roots = [naive_mth(LEAVES_300[:n]) for n in range(20)]
    proof = consistency_proof(LEAVES_300, 5, 13)
    assert verify_consistency(5, 13, roots[5], roots[13], proof)
    # A forked log: same old prefix claimed, different new leaves.
    forked = [*LEAVES_300[:10], leaf_hash(b"evil"), *LEAVES_300[11:13]]
    fork_root = root_from_leaf_hashes(forked)
    assert not verify_consistency(5, 13, roots[5], fork_root, proof)
    assert not verify_consistency(5, 13, roots[5], roots[13], consistency_proof(forked, 5, 13))


def test_consistency_argument_errors() -> None:
    with pytest.raises(ValueError, match="larger than"):
        consistency_proof(LEAVES_300, 5, 4)
    with pytest.raises(ValueError, match=">= 0"):
        consistency_proof(LEAVES_300, -1, 4)
    with pytest.raises(ValueError, match="exceeds"):
        consistency_proof(LEAVES_300[:3], 1, 4)
    with pytest.raises(ValueError, match="larger than"):
        verify_consistency(5, 4, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(1, 2, LEAVES_300[0], EMPTY_ROOT, [b"x" * 33])
