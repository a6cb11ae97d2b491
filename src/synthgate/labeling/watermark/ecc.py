"""Error correction for the 64-bit payload: a binary BCH code from ``bchlib`` (the Linux kernel's BCH)."""

from __future__ import annotations

import math
from functools import lru_cache

import bchlib
import numpy as np

from synthgate.labeling.watermark.base import PAYLOAD_BYTES

CHASE_FLIPS = 8


@lru_cache(maxsize=8)
def _bch(t: int) -> bchlib.BCH:
    return bchlib.BCH(t=t, m=8)


def codeword_bits(t: int) -> int:
    return 8 * PAYLOAD_BYTES + _bch(t).ecc_bytes * 8


def encode(payload: bytes, t: int) -> np.ndarray:
    """The payload and its BCH parity as a 0/1 bit vector."""
    ecc = _bch(t).encode(payload)
    return np.unpackbits(np.frombuffer(payload + bytes(ecc), dtype=np.uint8))


def decode(bits: np.ndarray, t: int) -> tuple[bytes, int] | None:
    """(payload, corrected bit errors), or None when more than ``t`` bits are wrong."""
    raw = np.packbits(bits.astype(np.uint8)).tobytes()
    data, ecc = bytearray(raw[:PAYLOAD_BYTES]), bytearray(raw[PAYLOAD_BYTES:])
    bch = _bch(t)
    nerr = bch.decode(bytes(data), bytes(ecc))
    if nerr < 0:
        return None
    bch.correct(data, ecc)
    # The code is shortened (n = 255 → 128 bits): a "correction" that puts errors in the virtual,
    # always-zero positions is a miscorrection. A true one changes exactly ``nerr`` received bits and
    # yields a consistent codeword.
    fixed = np.unpackbits(np.frombuffer(bytes(data) + bytes(ecc), dtype=np.uint8))
    if int(np.count_nonzero(fixed != bits.astype(np.uint8))) != nerr or bytes(bch.encode(bytes(data))) != ecc:
        return None
    return bytes(data), int(nerr)


def decode_soft(soft: np.ndarray, t: int, flips: int = CHASE_FLIPS) -> tuple[bytes, int] | None:
    """Chase-II soft decoding: also try flipping the ``flips`` least reliable bits.

    Among the candidates the codeword closest to the soft values wins. It accepts only codewords
    within ``t`` of some flip pattern, so the chance of a miscorrection grows by at most 2**flips.
    """
    hard = (soft > 0).astype(np.uint8)
    direct = decode(hard, t)
    if direct is not None:
        return direct
    weakest = np.argsort(np.abs(soft))[:flips]
    reliability = np.abs(soft)
    best: tuple[float, bytes, int] | None = None
    seen: set[bytes] = set()
    for pattern in range(1, 1 << flips):
        trial = hard.copy()
        for i in range(flips):
            if pattern >> i & 1:
                trial[weakest[i]] ^= 1
        result = decode(trial, t)
        if result is None or result[0] in seen:
            continue
        seen.add(result[0])
        codeword = encode(result[0], t)
        disagree = codeword != hard
        metric = float(reliability[disagree].sum())
        if best is None or metric < best[0]:
            best = (metric, result[0], int(disagree.sum()))
    return None if best is None else (best[1], best[2])


@lru_cache(maxsize=8)
def false_decode_probability(t: int, flips: int = CHASE_FLIPS) -> float:
    """Chance that uniformly random hard bits are accepted by :func:`decode_soft` at all.

    A word is accepted when it lies within ``t`` bits of one of the 2**64 codewords; Chase decoding
    tries 2**flips words, each uniform when the bits are. So the bound is
    2**flips · 2**64 · Σ_{i ≤ t} C(n, i) / 2**n with n the codeword length.
    """
    n = codeword_bits(t)
    ball = sum(math.comb(n, i) for i in range(t + 1))
    return min(1.0, (1 << flips) * ball * 2.0 ** (8 * PAYLOAD_BYTES - n))
