"""The watermark plug-in contract: a keyed codec that embeds a 64-bit payload and detects it again."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthgate.errors import InvalidInput
from synthgate.registry import Registry

PAYLOAD_BYTES = 8
#: Default decision threshold: the analytic bound on the per-item false-positive probability.
DEFAULT_MAX_P_VALUE = 1e-6


class NotEmbeddable(InvalidInput):
    """The media cannot carry the payload (too small, silent, unsupported format, ...)."""

    code = "not_embeddable"


@dataclass
class Detection:
    detected: bool
    payload: str | None  # 16 hex digits when the error-correcting code decoded it
    p_value: float  # upper bound on the chance that unmarked content scores this high
    score: float  # the synchronisation z-score the p-value is computed from
    codec: str
    corrected_bits: int | None = None  # bit errors the ECC repaired
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class WatermarkCodec(Protocol):
    """``embed`` returns a marked copy; ``detect`` never raises on unmarked or damaged media."""

    name: str

    def embed(self, media: Any, payload: bytes) -> Any: ...

    def detect(self, media: Any, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection: ...


codecs: Registry[WatermarkCodec] = Registry("watermark_codec")


def parse_payload(text: str) -> bytes:
    """``--payload`` is exactly 16 hex digits (64 bits)."""
    cleaned = text.strip().lower().removeprefix("0x")
    if len(cleaned) != 2 * PAYLOAD_BYTES or any(c not in "0123456789abcdef" for c in cleaned):
        raise InvalidInput(f"payload must be {2 * PAYLOAD_BYTES} hex digits (64 bits), got {text!r}")
    return bytes.fromhex(cleaned)


def keyed_bytes(key: bytes, label: str, n: int) -> bytes:
    """Deterministic secret stream: SHAKE-256 over the key, so nobody without it can predict the pattern."""
    return hashlib.shake_256(key + b"\x00synthgate-watermark\x00" + label.encode()).digest(n)


def keyed_signs(key: bytes, label: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(keyed_bytes(key, label, (n + 7) // 8), dtype=np.uint8))[:n]
    return (bits.astype(np.float32) * 2.0 - 1.0).astype(np.float32)


def keyed_permutation(key: bytes, label: str, n: int) -> np.ndarray:
    draws = np.frombuffer(keyed_bytes(key, label, 8 * n), dtype=np.uint64)
    return np.argsort(draws, kind="stable")


def union_bound_p_value(z: float, trials: int) -> float:
    """P(max of ``trials`` keyed correlations ≥ z) for content that does not carry the mark.

    For a fixed (unmarked) signal x and independent uniform key signs s, Hoeffding's inequality
    gives P(Σ s·x ≥ z·‖x‖) ≤ exp(−z²/2) whatever x is, so the bound needs no model of the content;
    the union bound covers the search over offsets and synchronisation candidates.
    """
    if z <= 0:
        return 1.0
    return float(min(1.0, trials * math.exp(-0.5 * z * z)))
