"""Keyed green-list watermark for text from a provider's own language model (Kirchenbauer et al., 2023).

At each step the previous token and the service's secret key pick a "green" share ``gamma`` of the
vocabulary; ``delta`` is added to the green tokens' logits before sampling. Text written that way
holds more green tokens than chance; the detector re-derives the green lists from the token ids
alone (no model needed) and reports the one-proportion z-score and its p-value.

Green membership is a keyed hash of (previous token, candidate token) — SHAKE-256 seeds a
per-step 64-bit value that is mixed with every token id by a SplitMix64 finaliser — so the whole
vocabulary's mask costs one vectorised pass, and a detector never needs a random permutation of
the vocabulary. Without the key the lists cannot be told apart from random ones.

``watermark_logits`` is the plain function for any runtime (numpy logits); ``GreenListLogitsProcessor``
has the ``(input_ids, scores) -> scores`` shape of a Hugging Face ``LogitsProcessor`` and works on
anything numpy can read (torch tensors are converted back with ``scores.new_tensor`` when present).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthgate.labeling.watermark.base import DEFAULT_MAX_P_VALUE, Detection

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _step_seed(key: bytes, previous: int) -> np.uint64:
    digest = hashlib.shake_256(
        key + b"\x00synthgate-text-kgw\x00" + int(previous).to_bytes(8, "little")
    ).digest(8)
    return np.uint64(int.from_bytes(digest, "little"))


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast bijective scramble of 64-bit words (wrapping arithmetic)."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class GreenList:
    def __init__(self, key: bytes, gamma: float = 0.25) -> None:
        if not 0.0 < gamma < 1.0:
            raise ValueError("gamma must be in (0, 1)")
        self.key = key
        self.gamma = gamma
        self._cut = np.uint64(min(int(gamma * 2.0**64), 2**64 - 1))

    def mask(self, previous: int, vocab_size: int) -> np.ndarray:
        ids = np.arange(vocab_size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            return _mix(ids ^ _step_seed(self.key, previous)) < self._cut

    def is_green(self, previous: int, token: int) -> bool:
        with np.errstate(over="ignore"):
            word = _mix(np.array([np.uint64(token) ^ _step_seed(self.key, previous)]))
        return bool(word[0] < self._cut)


def watermark_logits(logits: np.ndarray, previous: int, green: GreenList, delta: float = 2.0) -> np.ndarray:
    """Add ``delta`` to the green tokens' logits (last axis = vocabulary)."""
    return logits + delta * green.mask(previous, logits.shape[-1]).astype(logits.dtype)


class GreenListLogitsProcessor:
    """Hugging Face ``LogitsProcessor`` shape: ``processor(input_ids, scores) -> scores`` (batch × vocab)."""

    def __init__(self, key: bytes, gamma: float = 0.25, delta: float = 2.0) -> None:
        self.green = GreenList(key, gamma)
        self.delta = delta

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        ids = np.asarray(input_ids.cpu() if hasattr(input_ids, "cpu") else input_ids)
        values = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float32)
        bias = np.stack([self.green.mask(int(row[-1]), values.shape[-1]) for row in ids]).astype(np.float32)
        out = values + self.delta * bias
        return scores.new_tensor(out) if hasattr(scores, "new_tensor") else out


def detect_tokens(
    tokens: Sequence[int], key: bytes, *, gamma: float = 0.25, max_p_value: float = DEFAULT_MAX_P_VALUE
) -> Detection:
    """z-score of the green count over scored tokens; repeated (previous, token) pairs count once.

    Counting each bigram once keeps repetitive text (lists, code, refrains) from inflating the score.
    """
    green = GreenList(key, gamma)
    seen: set[tuple[int, int]] = set()
    hits = 0
    for previous, token in itertools.pairwise(tokens):
        pair = (int(previous), int(token))
        if pair in seen:
            continue
        seen.add(pair)
        hits += green.is_green(*pair)
    n = len(seen)
    if n == 0:
        return Detection(False, None, 1.0, 0.0, "text-kgw", details={"scored_tokens": 0})
    z = (hits - gamma * n) / math.sqrt(n * gamma * (1 - gamma))
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    return Detection(
        p_value <= max_p_value,
        None,
        p_value,
        round(z, 3),
        "text-kgw",
        details={"scored_tokens": n, "green_tokens": hits, "gamma": gamma},
    )
