"""Keyed audio watermark: dither-modulated (QIM) energy ratios of adjacent segments in speech bands.

Design
======

*Feature.* The signal is mixed to mono and resampled to 16 kHz (the detector does the same, so a 48
→ 16 kHz resample changes nothing it looks at). The band 500–3500 Hz is split into ``BANDS`` sub-
bands (zero-phase FFT masks over the whole excerpt) and time into ``SEGMENT``-sample segments (16
ms). A *cell* is a pair of adjacent segments in one sub-band; its feature is the energy ratio L =
10·log10(E_first / E_second) in dB. Volume changes, and any filter that is smooth across the band
(high-pass 500 Hz, low-pass 4 kHz, codec EQ, resampling) multiply both energies alike, so L does not
move.

*Embedding (quantisation index modulation).* Each cell carries one ±1 chip: L is moved to the
nearest point of d + kΔ (chip +1) or d + Δ/2 + kΔ (chip −1), with a keyed dither d per cell, by
raising the first segment and lowering the second by ε/2 dB each (|ε| ≤ Δ/2). QIM does not fight the
host: the change is at most Δ/2 whatever the speech does, which is what keeps the SNR ≥ 35 dB where
additive spread spectrum could not work. Gains change smoothly (raised-cosine ramps), two refinement
passes absorb the ramps' leakage. Quiet cells (pauses) are left alone.

*Layout.* A block of ``PAIRS`` cells in time × ``BANDS`` bands (5.12 s) repeats through the file;
inside any 5 s every cell position appears about once, so the per-position Hoeffding terms below are
independent and a 5 s excerpt reaches z ≈ 12 on clean speech. A keyed permutation assigns
``SYNC_CELLS`` cells to a known chip sequence and the rest to the 64-bit payload plus BCH parity (t
= 8, as for images), with keyed scrambling.

*Detection.* For every sub-segment offset (``STEP`` samples, from one cumulative sum) the cells'
phases θ = 2πL/Δ become unit vectors weighted by the content alone (a cell counts fully 16 dB above
its band's noise floor, the 10th percentile of the excerpt's cell levels, and not at all within 6 dB
of it, so added noise or a codec floor does not drown the loud cells; pauses count nothing) and are
folded onto one block; the block phase is found by a circular cross-correlation (FFT) with the keyed
sync chips. Per cell the soft value is Re(fold·e^{−i2πd/Δ}) = |fold|·cos(U) with U uniform (the
keyed dither) when the mark is absent; E exp(λ|f|cos U) = I0(λ|f|) ≤ exp(λ²|f|²/4), so the sync
sum is sub-Gaussian with variance proxy Σ|fold|²/2 and its tail is bounded with no model of the
content (``union_bound_p_value`` over offsets × block phases). The payload is read at the best
offset by ordered-statistics soft decoding of the BCH code (:mod:`.osd`), accepted within
``MAX_DISTANCE`` bits of the hard decisions; "sync and a codeword within d" gives a second,
payload-assisted p-value (sync p × (MAX_DISTANCE + 1) × P(random bits within d of a codeword)), and
the reported p-value is twice the smaller of the two.

*Limits* (``bench/watermark_audio.py``, docs/performance.md): at SNR ≥ 35 dB the step Δ is ≈ 1.25
dB, and MP3/AAC at 64 kbit/s or white noise at 20 dB SNR move a 16 ms × 190 Hz cell's ratio by
0.2–0.8 dB in loud cells and more in quiet ones (MP3 zeroes quiet bands): the per-cell soft value
falls to 0.1–0.3 and a 5 s excerpt no longer holds enough evidence for sync plus 128 coded bits.
Larger cells (32–64 ms × wider bands) do not help: per unit of time-frequency area the evidence
stays the same and fewer cells remain; a coarser step on quiet cells (3Δ) helps MP3 slightly but
costs PESQ (4.4 → 4.0). Resampling, filtering and volume leave the ratios alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy import signal

from synthgate.labeling.watermark import ecc, osd
from synthgate.labeling.watermark.base import (
    DEFAULT_MAX_P_VALUE,
    PAYLOAD_BYTES,
    Detection,
    NotEmbeddable,
    codecs,
    keyed_bytes,
    keyed_permutation,
    keyed_signs,
    union_bound_p_value,
)

RATE = 16_000  # analysis rate
SEGMENT = 256  # samples at RATE (16 ms)
BAND_LOW, BAND_HIGH = 500.0, 3500.0
BANDS = 16
PAIRS = 160  # cells per band per block: a block is 2 × 160 segments = 5.12 s
SYNC_CELLS = 640
DELTA_DB = 1.25  # QIM step of the energy ratio (dB): SNR ≈ 41.6 − 20·log10(Δ) in the band
STEP = 2  # offset search resolution (1/8 ms)
QUIET_DB = 35.0  # cells this far below the loudest cells are left alone (pauses)
# Cells whose band level is below −75 dBFS are silence: nothing to hide a mark in.
_FLOOR_DB = 10 * math.log10(SEGMENT * 10 ** (-75 / 10))
RAMP = 64  # raised-cosine gain ramp between segments (4 ms)
GAIN_CAP_DB = 1.0  # most any segment's energy moves (dB)
REFINE = 2  # extra embedding passes that absorb the ramps' leakage
BCH_T = 8
MIN_SECONDS = 3.0
# Detection weights: a cell counts fully FLOOR_MARGIN + FLOOR_RAMP dB above its band's noise floor
# (the FLOOR_PCT-th percentile of the excerpt's cell levels), not at all within FLOOR_MARGIN dB.
FLOOR_PCT = 10
FLOOR_MARGIN_DB = 6.0
FLOOR_RAMP_DB = 10.0
# Soft decoding accepts an ordered-statistics (OSD) codeword this close to the hard bits (see detect).
MAX_DISTANCE = 13


@dataclass
class Audio:
    """Float samples in [-1, 1], shape (frames, channels), and their sample rate."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.rate


def _to_analysis(audio: Audio) -> np.ndarray:
    mono = audio.samples.mean(axis=1) if audio.samples.ndim == 2 else audio.samples
    mono = mono.astype(np.float64)
    if audio.rate == RATE:
        return mono
    g = math.gcd(RATE, audio.rate)
    return np.asarray(signal.resample_poly(mono, RATE // g, audio.rate // g), dtype=np.float64)


def _bands(x: np.ndarray) -> np.ndarray:
    """Sub-band signals (BANDS × n) by zero-phase FFT masks."""
    n = x.size
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    edges = np.linspace(BAND_LOW, BAND_HIGH, BANDS + 1)
    out = np.empty((BANDS, n))
    for b in range(BANDS):
        mask = (freqs >= edges[b]) & (freqs < edges[b + 1])
        out[b] = np.fft.irfft(spectrum * mask, n)
    return out


def _segment_energy(bands: np.ndarray, start: int, count: int) -> np.ndarray:
    """Energy per band of ``count`` segments starting at sample ``start`` (BANDS × count)."""
    cut = bands[:, start : start + count * SEGMENT]
    return (cut * cut).reshape(BANDS, count, SEGMENT).sum(axis=2) + 1e-12


class AudioCodec:
    """See the module docstring. Works on :class:`Audio`; file helpers live in the package."""

    name = "audio-qim-v1"

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("watermark key must be at least 128 bits")
        self.key = key
        self.n_bits = ecc.codeword_bits(BCH_T)

    @cached_property
    def _layout(self) -> dict[str, np.ndarray]:
        n = PAIRS * BANDS  # cell index = pair * BANDS + band
        order = keyed_permutation(self.key, "audio/cells", n)
        dither = np.frombuffer(keyed_bytes(self.key, "audio/dither", 8 * n), dtype=np.uint64)
        sync_chip = np.zeros(n, np.float64)
        sync_chip[order[:SYNC_CELLS]] = keyed_signs(self.key, "audio/sync", SYNC_CELLS)
        pay_idx = order[SYNC_CELLS:]
        return {
            "phase": (dither / 2.0**64) * 2 * np.pi,  # 2π·d/Δ
            "sync_chip": sync_chip,
            "pay_idx": pay_idx,
            "scramble": keyed_signs(self.key, "audio/scramble", pay_idx.size).astype(np.float64),
            "bit_of": np.arange(pay_idx.size) % self.n_bits,
        }

    def _chips(self, payload: bytes) -> np.ndarray:
        lay = self._layout
        bits = ecc.encode(payload, BCH_T).astype(np.float64) * 2 - 1
        chips = lay["sync_chip"].copy()
        chips[lay["pay_idx"]] = lay["scramble"] * bits[lay["bit_of"]]
        return chips.reshape(PAIRS, BANDS).T  # BANDS × PAIRS

    # --- embedding ------------------------------------------------------------------------------

    def embed(self, media: Audio, payload: bytes) -> Audio:
        if len(payload) != PAYLOAD_BYTES:
            raise ValueError(f"payload must be {PAYLOAD_BYTES} bytes")
        if media.seconds < MIN_SECONDS:
            raise NotEmbeddable(
                f"audio of {media.seconds:.1f} s is too short to carry the watermark "
                f"(needs ≥ {MIN_SECONDS:g} s)"
            )
        x = _to_analysis(media)
        bands = _bands(x)
        n_pairs = x.size // (2 * SEGMENT)
        energy = _segment_energy(bands, 0, 2 * n_pairs).reshape(BANDS, n_pairs, 2)
        level = 10 * np.log10(energy.min(axis=2))
        loud = (level > np.percentile(level, 95) - QUIET_DB) & (level > _FLOOR_DB)
        if np.mean(loud) < 0.2:
            raise NotEmbeddable("audio is (nearly) silent: too few audible segments to carry the watermark")
        chips = self._chips(payload)
        chip = chips[:, np.arange(n_pairs) % PAIRS]  # ±1: +1 → lattice d, −1 → d + Δ/2
        phase = self._layout["phase"].reshape(PAIRS, BANDS).T[:, np.arange(n_pairs) % PAIRS]
        target_offset = phase / (2 * np.pi) * DELTA_DB + (chip < 0) * (DELTA_DB / 2)
        gain_db = np.zeros((BANDS, n_pairs, 2))
        for _ in range(1 + REFINE):
            marked = self._apply(bands, gain_db)
            e = _segment_energy(marked, 0, 2 * n_pairs).reshape(BANDS, n_pairs, 2)
            ratio = 10 * np.log10(e[:, :, 0] / e[:, :, 1])
            error = ratio - target_offset
            eps = -(error - DELTA_DB * np.round(error / DELTA_DB))  # move to the nearest lattice point
            eps = np.where(loud, eps, 0.0)
            gain_db[:, :, 0] += eps / 2
            gain_db[:, :, 1] -= eps / 2
            # Where the neighbours' leakage dominates a cell no gain reaches the target: cap it.
            np.clip(gain_db, -GAIN_CAP_DB, GAIN_CAP_DB, out=gain_db)
        delta = (self._apply(bands, gain_db) - bands).sum(axis=0)
        return Audio(_add(media, delta), media.rate)

    def _apply(self, bands: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
        """Band signals times smooth per-segment gains (amplitude = energy gain / 2 in dB)."""
        n_seg = gain_db.shape[1] * 2
        seg_gain = 10 ** (gain_db.reshape(BANDS, n_seg) / 20.0)
        envelope = np.repeat(seg_gain, SEGMENT, axis=1)
        # Raised-cosine ramps at segment borders: a gain step would click.
        kernel = np.hanning(RAMP + 2)[1:-1]
        kernel /= kernel.sum()
        padded = np.pad(envelope, ((0, 0), (RAMP, RAMP)), mode="edge")
        envelope = signal.oaconvolve(padded, kernel[None, :], mode="same", axes=1)[:, RAMP:-RAMP]
        out = bands.copy()
        out[:, : envelope.shape[1]] *= envelope
        return out

    # --- detection ------------------------------------------------------------------------------

    def detect(self, media: Audio, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection:
        if media.seconds < 1.0:
            return Detection(False, None, 1.0, 0.0, self.name, details={"reason": "audio too short"})
        x = _to_analysis(media)
        bands = _bands(x)
        lay = self._layout
        sync = (lay["sync_chip"] * np.exp(1j * lay["phase"])).reshape(PAIRS, BANDS)
        sync_f = np.conj(np.fft.fft(sync, axis=0))
        sync_mask_f = np.conj(np.fft.fft((lay["sync_chip"] != 0).reshape(PAIRS, BANDS).astype(float), axis=0))
        n_pairs = (x.size - 2 * SEGMENT) // (2 * SEGMENT)
        if n_pairs < 1:
            return Detection(False, None, 1.0, 0.0, self.name, details={"reason": "audio too short"})
        # Segment energies at every searched offset from one cumulative sum per band.
        cumulative = np.concatenate([np.zeros((BANDS, 1)), np.cumsum(bands * bands, axis=1)], axis=1)
        starts = np.arange(0, 2 * SEGMENT, STEP)
        edges = starts[:, None] + SEGMENT * np.arange(2 * n_pairs + 1)[None, :]  # offsets × edges
        at_edges = cumulative[:, edges]  # bands × offsets × edges
        energy = np.diff(at_edges, axis=2).reshape(BANDS, starts.size, n_pairs, 2) + 1e-12
        theta = (2 * np.pi / DELTA_DB) * 10 * np.log10(energy[..., 0] / energy[..., 1])
        level = 10 * np.log10(energy.min(axis=3))
        top = np.percentile(level[:, 0], 95)
        # Weights from the content alone (never the key): cells near their band's noise floor (added
        # noise, codec floor) carry little, pauses nothing.
        floor = np.percentile(level[:, 0], FLOOR_PCT, axis=1)[:, None, None]
        weight = np.clip((level - floor - FLOOR_MARGIN_DB) / FLOOR_RAMP_DB, 0.0, 1.0)
        weight *= np.clip((level - (top - QUIET_DB)) / 5.0, 0.0, 1.0)
        u = np.transpose(weight * np.exp(1j * theta), (1, 2, 0))  # offsets × pairs × bands
        reps = -(-n_pairs // PAIRS)
        padded = np.zeros((starts.size, reps * PAIRS, BANDS), complex)
        padded[:, :n_pairs] = u
        fold = padded.reshape(starts.size, reps, PAIRS, BANDS).sum(axis=1)
        # Block phase q: corr[k] = Σ_p fold[p + k]·conj(sync[p]), excerpt cell p + k is block cell p.
        corr = np.fft.ifft(np.fft.fft(fold, axis=1) * sync_f, axis=1).real.sum(axis=2)
        # Given the content, |fold| is fixed and each sync term is |fold|·cos(U) with U uniform (the
        # keyed dither): E exp(λ|f|cos U) = I0(λ|f|) ≤ exp(λ²|f|²/4), so the sum is sub-Gaussian with
        # variance proxy Σ|fold|²/2 and P(corr ≥ z·√(Σ|fold|²/2)) ≤ exp(−z²/2).
        var = np.fft.ifft(np.fft.fft(np.abs(fold) ** 2, axis=1) * sync_mask_f, axis=1).real.sum(axis=2) / 2
        z_all = corr / np.sqrt(np.maximum(var, 1e-12))
        i, q = (int(v) for v in np.unravel_index(int(np.argmax(z_all)), z_all.shape))
        z, start = float(z_all[i, q]), int(starts[i])
        trials = len(starts) * PAIRS
        aligned = np.roll(fold[i], -q, axis=0)  # aligned[p] = fold[p + q]: block cell p
        details: dict[str, Any] = {"offset_samples_16k": start, "block_phase": q, "searched": trials}
        decoded = None
        sync_p = p_value = union_bound_p_value(z, trials)
        # The OSD codeword counts when it lies within MAX_DISTANCE of the hard bits. Unmarked content
        # gives uniform hard bits (keyed scrambling), independent of the sync sum, so P(sync p ≤ a and
        # distance ≤ d) ≤ a·F(d) (osd.false_decode_probability); the (MAX_DISTANCE + 1) factor pays
        # for reading d off the data.
        assisted = (MAX_DISTANCE + 1) * osd.false_decode_probability(MAX_DISTANCE, BCH_T)
        if 2 * sync_p <= max_p_value or 2 * sync_p * assisted <= max_p_value:
            soft_cells = (aligned * np.exp(-1j * lay["phase"].reshape(PAIRS, BANDS))).real.ravel()
            values = soft_cells[lay["pay_idx"]] * lay["scramble"]
            soft = np.bincount(lay["bit_of"], weights=values, minlength=self.n_bits)
            payload, distance = osd.decode(soft, BCH_T)
            details["distance"] = distance
            if distance <= MAX_DISTANCE:
                decoded = payload, distance
                joint = sync_p * (MAX_DISTANCE + 1) * osd.false_decode_probability(distance, BCH_T)
                p_value = min(p_value, joint)
        p_value = min(1.0, 2 * p_value)  # either test may fire: Bonferroni over the two
        detected = p_value <= max_p_value
        payload_hex = corrected = None
        if detected:
            if decoded is not None:
                payload_hex, corrected = decoded[0].hex(), decoded[1]
            else:
                details["payload"] = "mark found but too damaged to read the payload"
        return Detection(detected, payload_hex, p_value, round(z, 3), self.name, corrected, details)


def _add(media: Audio, delta16: np.ndarray) -> np.ndarray:
    """Add the 16 kHz mark to every channel at the file's own rate."""
    if media.rate != RATE:
        g = math.gcd(RATE, media.rate)
        delta = signal.resample_poly(delta16, media.rate // g, RATE // g)
    else:
        delta = delta16
    n = media.samples.shape[0]
    delta = np.pad(delta[:n], (0, max(0, n - delta.size)))
    samples = media.samples.astype(np.float64)
    out = samples + (delta[:, None] if samples.ndim == 2 else delta)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


@codecs.register("audio")
def _audio_codec(key: bytes) -> AudioCodec:
    return AudioCodec(key)
