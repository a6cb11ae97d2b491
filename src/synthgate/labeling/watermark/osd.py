"""Ordered-statistics soft decoding (OSD) of the BCH payload code in :mod:`.ecc`.

Chase decoding (``ecc.decode_soft``) only finds codewords within ``t`` bit errors of a few trial
words. OSD uses the soft values fully: the ``k`` = 64 most reliable, linearly independent positions
are taken as an information set, re-encoded, and every pattern of up to ``ORDER`` flips among them
is tried; the codeword that best matches the soft values wins. That is close to maximum-likelihood
decoding and reads words with well over ``t`` errors, as long as few of the errors sit in the most
reliable positions.

OSD always returns *some* codeword, so acceptance is a separate, content-free test: the codeword's
Hamming distance ``d`` to the hard decisions. For uniformly random hard bits (an unmarked signal)
``P(some codeword lies within d) ≤ 2**64 · Σ_{i ≤ d} C(n, i) / 2**n``, whatever decoder found it;
:func:`false_decode_probability` returns that bound.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from synthgate.labeling.watermark import ecc
from synthgate.labeling.watermark.base import PAYLOAD_BYTES

K = 8 * PAYLOAD_BYTES
ORDER = 2


@lru_cache(maxsize=8)
def generator(t: int) -> np.ndarray:
    """The code's k × n generator matrix over GF(2): row i encodes the payload with only bit i set.

    The BCH parity is a polynomial remainder, linear in the data, so these rows span the code.
    """
    rows = []
    for i in range(K):
        unit = np.zeros(K, np.uint8)
        unit[i] = 1
        rows.append(ecc.encode(np.packbits(unit).tobytes(), t))
    return np.array(rows, dtype=np.uint8)


@lru_cache(maxsize=32)
def false_decode_probability(d: int, t: int) -> float:
    """Chance that uniformly random hard bits lie within ``d`` bits of some codeword."""
    n = ecc.codeword_bits(t)
    ball = sum(math.comb(n, i) for i in range(d + 1))
    return min(1.0, ball * 2.0 ** (K - n))


def _systematic(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-reduce ``g`` (k × n, columns in reliability order); returns it and the k pivot columns."""
    g = g.copy()
    pivots: list[int] = []
    row = 0
    for col in range(g.shape[1]):
        if row == g.shape[0]:
            break
        hits = np.nonzero(g[row:, col])[0]
        if hits.size == 0:
            continue  # dependent on the more reliable columns: not in the information set
        r = row + int(hits[0])
        if r != row:
            g[[row, r]] = g[[r, row]]
        others = np.nonzero(g[:, col])[0]
        others = others[others != row]
        g[others] ^= g[row]
        pivots.append(col)
        row += 1
    return g, np.array(pivots)


def decode(soft: np.ndarray, t: int, order: int = ORDER) -> tuple[bytes, int]:
    """The most likely payload for ``soft`` (> 0 means bit 1) and its codeword's distance to the hard bits."""
    n = soft.size
    perm = np.argsort(-np.abs(soft), kind="stable")
    g, pivots = _systematic(generator(t)[:, perm])
    r = soft[perm]
    hard = (r > 0).astype(np.uint8)
    base = (hard[pivots].astype(np.int64) @ g % 2).astype(np.uint8)
    candidates = [base[None, :]]
    if order >= 1:
        candidates.append(base[None, :] ^ g)
    if order >= 2:
        i, j = np.triu_indices(g.shape[0], 1)
        candidates.append(base[None, :] ^ g[i] ^ g[j])
    words = np.concatenate(candidates)
    # Maximum likelihood for independent soft values: least |soft| mass on the disagreeing bits.
    cost = (words != hard[None, :]) @ np.abs(r)
    best = words[int(np.argmin(cost))]
    codeword = np.empty(n, np.uint8)
    codeword[perm] = best
    distance = int(np.count_nonzero(codeword != (soft > 0)))
    return np.packbits(codeword[:K]).tobytes(), distance
