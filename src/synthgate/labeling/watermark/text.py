"""Keyed green-list watermark for text from a provider's own language model (Kirchenbauer et al., 2023).

At each step the previous token and the service's secret key pick a "green" share ``gamma`` of the
vocabulary; ``delta`` is added to the green tokens' logits before sampling. Text written that way
holds more green tokens than chance; the detector re-derives the green lists from the token ids
alone (no model needed) and reports the one-proportion z-score and its p-value.

Green membership is a keyed hash of (previous token, candidate token) — SHAKE-256 seeds a
per-step 64-bit value that is mixed with every token id by a SplitMix64 finaliser — so the whole
vocabulary's mask costs one vectorised pass, and a detector never needs a random permutation of
the vocabulary. Without the key the lists cannot be told apart from random ones.

Three ways in:

* ``watermark_logits`` — the plain function for any runtime (numpy logits, one row or a batch);
* ``GreenListLogitsProcessor`` — a Hugging Face ``transformers.LogitsProcessor`` (a real subclass when
  ``transformers`` is installed, built on first use so that importing this module never imports
  ``transformers`` or ``torch``): ``model.generate(..., logits_processor=LogitsProcessorList([proc]))``.
  On torch tensors the bias is computed on the scores' device, batch-vectorised, without a numpy
  round trip; numpy arrays work too;
* ``detect_text`` / ``detect_tokens`` — detection from text plus the model's tokenizer, or from ids;
  the p-value is the exact binomial tail of the green count (not the normal tail of z).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from synthgate.labeling.watermark.base import DEFAULT_MAX_P_VALUE, Detection

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def _step_seed_int(key: bytes, previous: int) -> int:
    digest = hashlib.shake_256(
        key + b"\x00synthgate-text-kgw\x00" + int(previous).to_bytes(8, "little")
    ).digest(8)
    return int.from_bytes(digest, "little")


def _step_seed(key: bytes, previous: int) -> np.uint64:
    return np.uint64(_step_seed_int(key, previous))


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast bijective scramble of 64-bit words (wrapping arithmetic)."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def _signed(value: int) -> int:
    """A 64-bit word as the two's-complement int64 holding the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


class GreenList:
    def __init__(self, key: bytes, gamma: float = 0.25) -> None:
        if not 0.0 < gamma < 1.0:
            raise ValueError("gamma must be in (0, 1)")
        self.key = key
        self.gamma = gamma
        self._cut_int = min(int(gamma * 2.0**64), 2**64 - 1)
        self._cut = np.uint64(self._cut_int)
        self._seeds: dict[int, int] = {}

    def seed(self, previous: int) -> int:
        """The per-step 64-bit word for ``previous`` (cached: the hash runs once per distinct token)."""
        previous = int(previous)
        found = self._seeds.get(previous)
        if found is None:
            if len(self._seeds) > 1 << 20:
                self._seeds.clear()
            found = self._seeds[previous] = _step_seed_int(self.key, previous)
        return found

    def mask(self, previous: int, vocab_size: int) -> np.ndarray:
        return self.masks([previous], vocab_size)[0]

    def masks(self, previous: Sequence[int], vocab_size: int) -> np.ndarray:
        """Green masks for a batch of previous tokens: bool array (len(previous), vocab_size)."""
        seeds = np.array([self.seed(p) for p in previous], dtype=np.uint64)[:, None]
        ids = np.arange(vocab_size, dtype=np.uint64)[None, :]
        return _mix(ids ^ seeds) < self._cut

    def green_pairs(self, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Whether each (previous, token) pair is green: bool array of len(pairs)."""
        seeds = np.array([self.seed(p) for p, _ in pairs], dtype=np.uint64)
        tokens = np.array([t for _, t in pairs], dtype=np.uint64)
        return _mix(tokens ^ seeds) < self._cut

    def is_green(self, previous: int, token: int) -> bool:
        word = _mix(np.array([np.uint64(int(token)) ^ np.uint64(self.seed(previous))]))
        return bool(word[0] < self._cut)

    def torch_masks(self, previous: Any, vocab_size: int) -> Any:
        """``masks`` on torch: ``previous`` is a 1-D integer tensor; the mask lives on its device.

        torch has no wrapping unsigned 64-bit multiply, so the words are int64 with the same bits:
        multiplication wraps identically, right shifts are made logical with a mask, and the
        unsigned comparison becomes a signed one after flipping the top bit of both sides.
        """
        import torch

        device = previous.device
        seeds = torch.tensor(
            [_signed(self.seed(p)) for p in previous.tolist()], dtype=torch.int64, device=device
        )
        z = torch.arange(vocab_size, dtype=torch.int64, device=device)[None, :] ^ seeds[:, None]

        def lsr(x: Any, k: int) -> Any:
            return (x >> k) & ((1 << (64 - k)) - 1)

        z = (z ^ lsr(z, 30)) * _signed(_C1)
        z = (z ^ lsr(z, 27)) * _signed(_C2)
        z = z ^ lsr(z, 31)
        top = -(1 << 63)
        return (z ^ top) < (_signed(self._cut_int) ^ top)


def watermark_logits(
    logits: np.ndarray, previous: int | Sequence[int], green: GreenList, delta: float = 2.0
) -> np.ndarray:
    """Add ``delta`` to the green tokens' logits (last axis = vocabulary).

    ``previous`` is the last token before the step; for a batch (``logits`` of shape batch × vocab)
    it may be one previous token per row.
    """
    vocab = logits.shape[-1]
    if isinstance(previous, int | np.integer):
        bias = green.mask(int(previous), vocab)
    else:
        bias = green.masks([int(p) for p in previous], vocab).reshape(logits.shape)
    return logits + delta * bias.astype(logits.dtype)


class _GreenListProcessor:
    """The processor's behaviour; ``GreenListLogitsProcessor`` adds the ``transformers`` base class."""

    def __init__(self, key: bytes, gamma: float = 0.25, delta: float = 2.0) -> None:
        self.green = GreenList(key, gamma)
        self.gamma = gamma
        self.delta = delta

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """``(input_ids: batch × seq, scores: batch × vocab) -> scores`` with green logits raised by delta."""
        if type(scores).__module__.startswith("torch"):
            previous = input_ids[:, -1]
            mask = self.green.torch_masks(previous, scores.shape[-1])
            return scores + self.delta * mask.to(scores.dtype)
        values = np.asarray(scores)
        previous_ids = [int(row[-1]) for row in np.asarray(input_ids)]
        return watermark_logits(values, previous_ids, self.green, self.delta)


def _processor_class() -> type[_GreenListProcessor]:
    try:
        from transformers import LogitsProcessor
    except ImportError:  # no transformers: the duck-typed class still works anywhere
        base: tuple[type, ...] = (_GreenListProcessor,)
    else:
        base = (_GreenListProcessor, LogitsProcessor)
    cls = type(
        "GreenListLogitsProcessor",
        base,
        {
            "__module__": __name__,
            "__doc__": _GreenListProcessor.__doc__,
        },
    )
    cls.__qualname__ = "GreenListLogitsProcessor"
    return cls


if TYPE_CHECKING:
    GreenListLogitsProcessor = _GreenListProcessor
else:
    _lazy: dict[str, type] = {}

    def __getattr__(name: str) -> Any:
        if name == "GreenListLogitsProcessor":
            if name not in _lazy:
                _lazy[name] = _processor_class()
            return _lazy[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def binomial_sf(hits: int, n: int, gamma: float) -> float:
    """Exact ``P(Binomial(n, gamma) >= hits)``: the p-value of ``hits`` green tokens out of ``n``.

    The normal tail of the z-score is not used for the decision: for gamma = 0.25 the binomial is
    skewed and z >= 4.265 (normal tail 1e-5) is in fact exceeded by about 2.7e-5 of unmarked
    200-token texts.
    """
    if hits <= 0:
        return 1.0
    if hits > n:
        return 0.0
    log_p, log_q = math.log(gamma), math.log1p(-gamma)

    def log_pmf(k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q

    if hits <= n * gamma:  # the lower tail is the short, well-conditioned sum
        lower = sum(math.exp(log_pmf(k)) for k in range(hits))
        return min(1.0, max(0.0, 1.0 - lower))
    ratio = gamma / (1.0 - gamma)
    term = math.exp(log_pmf(hits))
    total = 0.0
    for k in range(hits, n + 1):  # terms fall geometrically past the mean
        total += term
        if term < total * 1e-17:
            break
        term *= (n - k) / (k + 1) * ratio
    return min(1.0, total)


def detect_tokens(
    tokens: Sequence[int], key: bytes, *, gamma: float = 0.25, max_p_value: float = DEFAULT_MAX_P_VALUE
) -> Detection:
    """Green count over scored tokens: z-score as the score, exact binomial tail as the p-value.

    Repeated (previous, token) pairs count once.

    Counting each bigram once keeps repetitive text (lists, code, refrains) from inflating the score.
    """
    green = GreenList(key, gamma)
    pairs = list(dict.fromkeys((int(p), int(t)) for p, t in itertools.pairwise(tokens)))
    n = len(pairs)
    hits = int(green.green_pairs(pairs).sum()) if n else 0
    if n == 0:
        return Detection(False, None, 1.0, 0.0, "text-kgw", details={"scored_tokens": 0})
    z = (hits - gamma * n) / math.sqrt(n * gamma * (1 - gamma))
    p_value = binomial_sf(hits, n, gamma)
    return Detection(
        p_value <= max_p_value,
        None,
        p_value,
        round(z, 3),
        "text-kgw",
        details={"scored_tokens": n, "green_tokens": hits, "gamma": gamma},
    )


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without added special tokens, from any tokenizer with ``encode``.

    Works with ``transformers`` tokenizers (list of ids), ``tokenizers.Tokenizer`` (an ``Encoding``
    with ``.ids``), tiktoken-style encoders and plain callables' objects whose ``encode`` takes text.
    """
    try:
        result = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        result = tokenizer.encode(text)
    ids = getattr(result, "ids", result)
    return [int(i) for i in ids]


def detect_text(
    text: str,
    tokenizer: Any,
    key: bytes,
    *,
    gamma: float = 0.25,
    max_p_value: float = DEFAULT_MAX_P_VALUE,
) -> Detection:
    """Detect the watermark in ``text`` re-tokenised with the generating model's ``tokenizer``.

    The first token only serves as context (its predecessor is unknown). Decoding and re-encoding
    can split a few stretches differently from the ids the model sampled (a sampled token sequence is
    not always the tokenizer's canonical one); those pairs score as unmarked, which lowers z a little
    but never raises the false-positive rate. ``gamma`` must match the generating processor's.
    """
    return detect_tokens(encode(tokenizer, text), key, gamma=gamma, max_p_value=max_p_value)
