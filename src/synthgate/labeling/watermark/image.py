"""Keyed, resize- and crop-robust invisible image watermark ("tiled-grid" codec).

Design
======

*Working grid.* Both embedder and detector resample the luminance to a fixed ``GRID × GRID``
working grid (per axis, whatever the image size). Any uniform or non-uniform resize of the whole
image therefore leaves the mark exactly where it was in working coordinates; only cropping (and
rotation) still moves it, and that is what the synchronisation below recovers.

*Tiled keyed pattern.* The working grid is covered by a periodic tile of ``TILE × TILE`` working
pixels made of ``CHIPS × CHIPS`` chips (2 × 2 working pixels each) of value ±1. A secret key
(SHAKE-256 stream) chooses which chips carry the synchronisation sequence (``SYNC_CHIPS`` known ±1
signs) and which carry the payload: the 64-bit payload plus BCH parity (``bchlib``, t = 8, 128
coded bits) is spread over the remaining chips with keyed scrambling signs, each coded bit on
several chips. Without the key the pattern is indistinguishable from noise, so nobody can read,
find or forge it.

*Embedding.* The chips are slightly rounded (Gaussian, ``CHIP_SMOOTH``: box edges carry high
frequencies that neither scaling nor JPEG keeps, so they would only spend PSNR), resampled smoothly
to full resolution in one pass and added equally to R, G and B (a luminance change, so 4:2:0 chroma
subsampling does not touch it). The amplitude per working pixel is the smaller of two limits:
an SSIM cap (``_ssim_cap``: SSIM's structure and luminance terms lose ≈ a²/(2σ² + C2) and
a²/(2μ² + C1), so flat mid-tones take ≈ 2 grey levels, texture and bright areas more, near-black
almost nothing) and a common level chosen by bisection so the whole change meets ``TARGET_RMS``
(PSNR ≥ 42 dB) — the detector weighs samples by how little the content hides them, so the cheap
flat areas fill up to their cap first. Near white a smooth tone offset, paid from the same budget,
makes room for both signs of the pattern; near black there is no offset (SSIM punishes shifting a
dark mean), the cap keeps the pattern small there instead.

*Detection.* The detector resamples to the working grid and whitens it (residual after a 3 × 3
mean, divided by its local spread and clipped, so textures and text edges weigh less). The nominal
lattice (no crop) is tried first with a reshape fold; when that does not settle it, tile-lattice
candidates come from the partly whitened autocorrelation (sharp peaks near (TILE, 0) and (0, TILE),
moved by crop and tilted by rotation) and from a comb search per axis over the marginal power
spectrum (sums only the harmonics of each candidate period: crops rescale each axis on its own),
and undecided results get a small refinement grid around the best lattice. Each lattice folds the
whole residual into one tile (bilinear splatting) and the keyed sync sequence is cross-correlated
with it at all ``TILE²`` cyclic offsets with FFTs. The payload is read at the best offset: soft
values per coded bit, BCH (t = 8) with Chase-II soft decoding, a consistency check against the
shortened code's miscorrections.

*Limits* (measured in ``bench/watermark_robustness.py``, docs/performance.md): at PSNR ≥ 42 dB dense
fine texture (grass, gravel) leaves z ≈ 4 even untouched; brightening +30 % saturates white
backgrounds at 255 and the mark with them (screenshots); small images (≤ 512 px) put the chips at
≤ 4 px, so JPEG 50 after a 0.5× resize usually leaves the payload unreadable.

*Calibrated false positives.* For content without the mark, and key signs s independent of it,
``z = Σ s·x / ‖x‖`` obeys Hoeffding's bound P(z ≥ t) ≤ exp(−t²/2) for every image x. A union bound
over the ``TILE²`` offsets and ``MAX_LATTICES`` lattices gives the reported p-value; ``detected``
means p ≤ ``max_p_value`` (1e-6 by default). When the sync alone falls short, a payload that BCH
accepts also counts: without the mark the coded bits are uniform and independent of the sync score
(disjoint chips, independent key streams), so the bound is multiplied by the decoder's false-accept
probability (``ecc.false_decode_probability``, ≈ 2e-5). ``bench/watermark_robustness.py`` checks it
empirically on unmarked images and random keys. A payload is reported only when BCH decoding succeeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageChops
from scipy import ndimage

from synthgate.labeling.watermark import ecc
from synthgate.labeling.watermark.base import (
    DEFAULT_MAX_P_VALUE,
    PAYLOAD_BYTES,
    Detection,
    NotEmbeddable,
    codecs,
    keyed_permutation,
    keyed_signs,
    union_bound_p_value,
)

GRID = 256  # working grid, pixels per axis
CHIP = 2  # working pixels per chip side
CHIPS = 32  # chips per tile side
TILE = CHIP * CHIPS  # tile side in working pixels (4 × 4 tiles on the grid)
SYNC_CHIPS = 192
BCH_T = 8
MIN_SIDE = 128  # smaller images cannot carry the payload reliably
TARGET_RMS = 1.9  # on the 0-255 scale: PSNR = 20·log10(255/1.9) ≈ 42.6 dB
SSIM_K = 0.26  # local amplitude ≤ SSIM_K·sqrt(2σ² + C2) (and the same with the mean): SSIM ≥ ~0.98
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # SSIM's stabilising constants on the 0-255 scale
PERIOD_RANGE = (TILE - 6, int(TILE / 0.78) + 2)  # crops of up to ~22 % per axis
SKEW = 6  # lag tolerance across the axis, for small rotations
PEAKS_PER_AXIS = 2  # autocorrelation peaks tried per axis (lattice candidates = 1 + 2²)
AUTO_WHITEN = 1.5  # exponent of the spectral whitening before the autocorrelation
COMB_PEAKS = 2  # comb-search periods tried per axis
COMB_SMOOTH = 9  # bins: spectral flattening before the comb sum
COMB_LOW, COMB_TOP = 6.0, 120.0  # harmonic frequencies the comb sums (cycles per grid)
REFINE_MIN_Z = 4.5  # undecided detections get a local lattice refinement
PEAK_SHARPEN = 7  # lags: the autocorrelation minus its local mean before peak picking
CHIP_SMOOTH = 0.6  # working pixels
RESIDUAL_SIZE = 3  # local mean the residual is taken against
HEADROOM = 0.7  # room the offset makes near black/white, in units of the local mark amplitude


def _resize(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float resample through Pillow ("F" mode): antialiased when shrinking, smooth when enlarging."""
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.array(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


@dataclass
class _Planes:
    """The image's colour samples as stored (uint8, or uint16 for 16-bit), plus how to rebuild it."""

    samples: np.ndarray  # H × W × C, C = 1 or 3
    alpha: np.ndarray | None
    mode: str  # output Pillow mode
    scale: float  # 1 for 8-bit, 257 for 16-bit (the mark is sized on the 0-255 scale)
    source: Image.Image | None = None  # the 8-bit L or RGB Pillow image the samples came from

    def _pil(self) -> Image.Image:
        if self.source is None:
            self.source = Image.fromarray(
                self.samples if self.samples.shape[2] == 3 else self.samples[:, :, 0]
            )
        return self.source

    def luma_image(self, precise: bool = True) -> Image.Image:
        """Luminance on the 0-255 scale, converted in C: "F" when ``precise``, else 8-bit "L"."""
        if self.scale != 1.0:
            return Image.fromarray(
                (self.samples[:, :, 0] / np.float32(self.scale)).astype(np.float32), mode="F"
            )
        img = self._pil()
        luma = img if img.mode == "L" else img.convert("L")
        return luma.convert("F") if precise else luma

    def extremes(self) -> tuple[Image.Image, Image.Image]:
        """Per-pixel brightest and darkest channel (8-bit Pillow images) for the headroom offset."""
        if self.samples.shape[2] == 1:
            one = (
                self.luma_image().convert("L")
                if self.scale != 1.0
                else Image.fromarray(self.samples[:, :, 0])
            )
            return one, one
        r, g, b = self._pil().split()
        return ImageChops.lighter(ImageChops.lighter(r, g), b), ImageChops.darker(ImageChops.darker(r, g), b)


def _split(image: Image.Image) -> _Planes:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image)
        if mode == "I" and int(arr.max(initial=0)) <= 255:
            return _Planes(arr.astype(np.uint8)[:, :, None], None, "L", 1.0)
        return _Planes(np.clip(arr, 0, 65535).astype(np.uint16)[:, :, None], None, "I;16", 257.0)
    if mode == "1":
        raise NotEmbeddable("1-bit (bilevel) images cannot carry an invisible watermark; convert to L first")
    if mode == "L":
        return _Planes(np.asarray(image)[:, :, None], None, "L", 1.0, image)
    if mode == "LA":
        raw = np.asarray(image)
        return _Planes(raw[:, :, :1], raw[:, :, 1], "LA", 1.0)
    if mode in ("P", "PA"):
        # A palette cannot hold the small per-pixel changes: the output becomes true colour.
        image = image.convert("RGBA" if ("transparency" in image.info or mode == "PA") else "RGB")
        mode = image.mode
    if mode == "RGBA":
        raw = np.asarray(image)
        return _Planes(np.ascontiguousarray(raw[:, :, :3]), raw[:, :, 3], "RGBA", 1.0)
    if mode != "RGB":
        image = image.convert("RGB")
    return _Planes(np.asarray(image), None, "RGB", 1.0, image)


def _join(planes: _Planes, delta: np.ndarray) -> Image.Image:
    """Add the luminance change to every colour channel, round and clip back to the stored type."""
    if planes.scale != 1.0:
        values = planes.samples[:, :, 0] + delta * np.float32(planes.scale)
        return Image.fromarray(np.clip(np.rint(values), 0, 65535).astype(np.uint16))  # uint16 → "I;16"
    # The samples are integers, so rint(sample + delta) = sample + rint(delta): round once, then
    # add in int16 per channel (three 2-D passes beat one strided 3-D pass).
    step = np.rint(delta).astype(np.int16)
    out: np.ndarray = np.empty(planes.samples.shape, np.uint8)
    for k in range(planes.samples.shape[2]):
        values = np.add(planes.samples[:, :, k], step, dtype=np.int16)
        np.clip(values, 0, 255, out=values)
        out[:, :, k] = values
    if planes.alpha is not None:
        out = np.concatenate([out, planes.alpha[:, :, None]], axis=2)
    if out.shape[2] == 1:
        return Image.fromarray(out[:, :, 0], mode="L")
    return Image.fromarray(out, mode=planes.mode)


def _grid(image: Image.Image) -> np.ndarray:
    """An 8-bit or float Pillow image resampled to the working grid, as float32."""
    return np.array(image.resize((GRID, GRID), Image.Resampling.BILINEAR), dtype=np.float32)


def _residual(grid: np.ndarray) -> np.ndarray:
    """Whitened working grid: the detail a 3 × 3 mean does not predict, divided by its local spread.

    Dividing by the local spread weights each sample by how much the content hides the mark there
    (textured areas and text edges count less), and the clip bounds any single outlier.
    """
    res = grid - ndimage.uniform_filter(grid, size=RESIDUAL_SIZE, mode="reflect")
    spread = np.sqrt(np.maximum(ndimage.uniform_filter(res * res, size=5, mode="reflect"), 0.0))
    return np.clip(res / (spread + 0.25), -2.5, 2.5).astype(np.float32)


def _ssim_cap(grid: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Largest local mark amplitude that keeps SSIM ≥ ~0.98 (``SSIM_K``), per working pixel.

    SSIM's structure term loses ≈ a² / (2σ² + C2) and its luminance term ≈ a² / (2μ² + C1) when a
    change of amplitude a meets local contrast σ and local mean μ (the darkest channel counts, as
    SSIM is taken per channel). The mark is smooth at the scale of SSIM's 7 × 7 window, so it acts
    mostly as a local mean shift: both terms bound it. Flat mid-tones allow ≈ 1 grey level, texture
    and bright areas far more; near black almost nothing.
    """
    mean = ndimage.uniform_filter(grid, size=3, mode="reflect")
    var = np.maximum(ndimage.uniform_filter(grid * grid, size=3, mode="reflect") - mean * mean, 0.0)
    dark_mean = ndimage.uniform_filter(dark, size=3, mode="reflect")
    bound = np.minimum(2.0 * var + _C2, 2.0 * dark_mean * dark_mean + _C1)
    return (SSIM_K * np.sqrt(bound)).astype(np.float32)


def _water_fill(cap: np.ndarray, weight: np.ndarray, budget: float) -> np.ndarray:
    """Amplitude min(cap, level), the level as high as the mean-square budget (PSNR) allows.

    The detector weighs each sample by how little the content there masks it, so the cheapest
    places (flat areas, up to their SSIM cap) fill first and busy texture gets the rest.
    """
    if float(np.mean(cap * cap * weight)) <= budget:
        return cap
    lo, hi = 0.0, float(cap.max())
    for _ in range(18):
        level = 0.5 * (lo + hi)
        clipped = np.minimum(cap, level)
        if float(np.mean(clipped * clipped * weight)) > budget:
            hi = level
        else:
            lo = level
    return np.minimum(cap, lo)


def _spread(chips: np.ndarray) -> np.ndarray:
    """Chip values to the whole working grid (each chip CHIP × CHIP pixels, tiles repeated)."""
    tile = np.kron(chips, np.ones((CHIP, CHIP), np.float32))
    reps = -(-GRID // TILE)
    return np.tile(tile, (reps, reps))[:GRID, :GRID]


def _chip_sums(residual: np.ndarray) -> np.ndarray:
    """What the detector sees per chip at the nominal lattice: all tiles folded, chip pixels summed."""
    n = GRID // TILE
    folded = residual[: n * TILE, : n * TILE].reshape(n, TILE, n, TILE).sum(axis=(0, 2))
    return folded.reshape(CHIPS, CHIP, CHIPS, CHIP).sum(axis=(1, 3))


class ImageCodec:
    """See the module docstring. One instance per key; cheap to build, patterns cached."""

    name = "image-grid-v1"

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("watermark key must be at least 128 bits")
        self.key = key
        self.n_bits = ecc.codeword_bits(BCH_T)

    # --- keyed layout ---------------------------------------------------------------------------

    @cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = CHIPS * CHIPS
        order = keyed_permutation(self.key, "image/chips", n)
        sync_idx, pay_idx = order[:SYNC_CHIPS], order[SYNC_CHIPS:]
        sync_signs = keyed_signs(self.key, "image/sync", SYNC_CHIPS)
        scramble = keyed_signs(self.key, "image/scramble", pay_idx.size)
        bit_of_chip = np.arange(pay_idx.size) % self.n_bits
        return sync_idx, sync_signs, pay_idx, scramble, bit_of_chip

    @cached_property
    def _sync_spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """FFTs of the sync template (signs at chip corners) and of its support."""
        sync_idx, sync_signs, *_ = self._layout
        template = np.zeros((TILE, TILE), np.float32)
        support = np.zeros((TILE, TILE), np.float32)
        rows, cols = np.divmod(sync_idx, CHIPS)
        template[rows * CHIP, cols * CHIP] = sync_signs
        support[rows * CHIP, cols * CHIP] = 1.0
        return np.conj(np.fft.rfft2(template)), np.conj(np.fft.rfft2(support))

    def _chips(self, payload: bytes) -> np.ndarray:
        """The ±1 chip values of one tile (CHIPS × CHIPS)."""
        sync_idx, sync_signs, pay_idx, scramble, bit_of_chip = self._layout
        bits = ecc.encode(payload, BCH_T).astype(np.float32) * 2.0 - 1.0
        chips = np.zeros(CHIPS * CHIPS, np.float32)
        chips[sync_idx] = sync_signs
        chips[pay_idx] = scramble * bits[bit_of_chip]
        return chips.reshape(CHIPS, CHIPS)

    # --- embedding ------------------------------------------------------------------------------

    def embed(self, media: Image.Image, payload: bytes) -> Image.Image:
        if len(payload) != PAYLOAD_BYTES:
            raise ValueError(f"payload must be {PAYLOAD_BYTES} bytes")
        width, height = media.size
        if min(width, height) < MIN_SIDE:
            raise NotEmbeddable(
                f"image {width}×{height} is too small to carry the watermark (needs ≥ {MIN_SIDE} px per side)"
            )
        planes = _split(media)
        grid = _grid(planes.luma_image(precise=False))  # only shapes the mask: 8 bits are plenty
        brightest, darkest = planes.extremes()
        unit = ndimage.gaussian_filter(_spread(self._chips(payload)), CHIP_SMOOTH, mode="wrap")
        cap = _ssim_cap(grid, _grid(darkest))
        # Smooth tone offset where a whole neighbourhood is near white, so both signs of the pattern
        # fit below 255 (white screenshot backgrounds would otherwise clip half of it away). It is
        # smooth, so it carries no structure of its own and the detector's high-pass ignores it. Near
        # black no offset is added: SSIM's luminance term punishes any shift of a dark mean, so the
        # cap keeps the pattern small there instead and clipping costs little.
        local_top = ndimage.maximum_filter(_grid(brightest), size=5)
        offset = ndimage.gaussian_filter(np.minimum(0.0, 255.0 - HEADROOM * cap - local_top), 2.0)
        offset_ms = float(np.mean(offset * offset))
        if offset_ms > 0.5 * TARGET_RMS**2:  # the offset gets at most half of the PSNR budget
            offset *= np.sqrt(0.5 * TARGET_RMS**2 / offset_ms)
            offset_ms = 0.5 * TARGET_RMS**2
        amplitude = _water_fill(cap, unit * unit, TARGET_RMS**2 - offset_ms)
        field = amplitude * unit
        delta = _resize(field + offset, width, height)
        return _join(planes, delta)

    # --- detection ------------------------------------------------------------------------------

    def detect(self, media: Image.Image, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection:
        width, height = media.size
        if min(width, height) < 32:
            return Detection(False, None, 1.0, 0.0, self.name, details={"reason": "image too small"})
        try:
            planes = _split(media)
        except NotEmbeddable as exc:
            return Detection(False, None, 1.0, 0.0, self.name, details={"reason": exc.message})
        residual = _residual(_grid(planes.luma_image()))
        # The union bound counts every lattice the search may try (``MAX_LATTICES``), whether or not
        # it gets that far, so stopping early at a confident nominal lattice keeps the bound valid.
        trials = TILE * TILE * MAX_LATTICES
        nominal = self._fold(residual, _NOMINAL)
        z, shift = self._sync(nominal)
        found = [(z, nominal, shift, _NOMINAL)]
        decoded: tuple[bytes, int] | None = None
        if union_bound_p_value(z, trials) <= max_p_value:
            decoded = self._read(nominal, shift)
        if decoded is None:
            for lattice in self._lattices(residual)[1:]:
                chipsum = self._fold(residual, lattice)
                z, shift = self._sync(chipsum)
                found.append((z, chipsum, shift, lattice))
            found.sort(key=lambda item: -item[0])
            if union_bound_p_value(found[0][0], trials) > max_p_value and found[0][0] >= REFINE_MIN_Z:
                # Undecided: the peak picking may be a fraction of a pixel off (the fold drifts
                # across the tiles). Try a small grid of periods around the best lattice.
                base = found[0][3]
                for step in _REFINE_STEPS:
                    lattice = base + np.diag(step)
                    chipsum = self._fold(residual, lattice)
                    z, shift = self._sync(chipsum)
                    found.append((z, chipsum, shift, lattice))
                found.sort(key=lambda item: -item[0])
        z, chipsum, shift, lattice = found[0]
        p_value = union_bound_p_value(z, trials)
        if decoded is None and p_value <= max_p_value:
            decoded = self._read(chipsum, shift)
        elif decoded is None:
            # Payload-assisted decision. Without the mark, the coded bits read at any offset are
            # uniform and independent of the sync score (disjoint chips, independent key signs), so
            # "sync z ≥ z₀ and the BCH decoder accepts" has probability ≤ e^(−z₀²/2) · P_false_decode
            # per trial, and the union bound over the trials still holds.
            for z_c, chipsum_c, shift_c, lattice_c in found:
                p_c = union_bound_p_value(z_c, trials) * ecc.false_decode_probability(BCH_T)
                if p_c > max_p_value:
                    break
                decoded = self._read(chipsum_c, shift_c)
                if decoded is not None:
                    z, shift, lattice, p_value = z_c, shift_c, lattice_c, p_c
                    break
        detected = p_value <= max_p_value
        details: dict[str, Any] = {
            "lattice": np.round(lattice, 2).tolist(),
            "offset": list(shift),
            "searched": trials,
        }
        payload_hex: str | None = None
        corrected: int | None = None
        if detected:
            if decoded is not None:
                payload_hex, corrected = decoded[0].hex(), decoded[1]
            else:
                details["payload"] = "mark found but too damaged to read the payload"
        return Detection(detected, payload_hex, p_value, round(z, 3), self.name, corrected, details)

    def _lattices(self, residual: np.ndarray) -> list[np.ndarray]:
        """Tile lattice candidates: rows are the two period vectors (dx, dy) in working pixels."""
        spectrum = np.fft.rfft2(residual)
        power = (spectrum * np.conj(spectrum)).real
        # Partly whitened (|F|^(2 - AUTO_WHITEN)): a broadband periodic tile stands out against the
        # few strong harmonics of text lines or regular textures.
        auto = np.fft.irfft2(power / np.maximum(power, 1e-9) ** (AUTO_WHITEN / 2), s=residual.shape)
        lo, hi = PERIOD_RANGE
        found: list[list[np.ndarray]] = []
        for axis in (0, 1):
            lags_along = np.arange(lo, hi + 1)
            lags_across = np.arange(-SKEW, SKEW + 1)
            if axis == 0:  # horizontal period: lag x along, lag y across
                window = auto[np.ix_(lags_across % GRID, lags_along % GRID)]
            else:
                window = auto[np.ix_(lags_along % GRID, lags_across % GRID)].T
            peaks: list[np.ndarray] = []
            # The mark's peaks are a chip wide; content correlates smoothly over lags: keep the sharp part.
            work = window - ndimage.uniform_filter(window, size=PEAK_SHARPEN, mode="nearest")
            for _ in range(PEAKS_PER_AXIS):
                i, j = (int(v) for v in np.unravel_index(int(np.argmax(work)), work.shape))
                along = float(lags_along[j]) + _parabolic(work, i, j, axis=1)
                across = float(lags_across[i]) + _parabolic(work, i, j, axis=0)
                peaks.append(np.array([along, across] if axis == 0 else [across, along]))
                work[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3] = -np.inf
            found.append(peaks)
        lattices = [_NOMINAL]
        for vx in found[0]:
            for vy in found[1]:
                lattice = np.stack([vx, vy])
                if all(np.abs(lattice - other).max() > 0.3 for other in lattices):
                    lattices.append(lattice)
        # Crops rescale each axis on its own: a comb search over each axis' marginal power spectrum
        # sums only the harmonics of a candidate period, so it finds periods the autocorrelation
        # (which also adds up every other frequency's content) ranks too low.
        periods_y = _comb_periods(_fold_spectrum(power.sum(axis=1)))
        for px in _comb_periods(power.sum(axis=0)):
            for py in periods_y:
                lattice = np.array([[px, 0.0], [0.0, py]])
                if all(np.abs(lattice - other).max() > 0.3 for other in lattices):
                    lattices.append(lattice)
        return lattices

    def _fold(self, residual: np.ndarray, lattice: np.ndarray) -> np.ndarray:
        """Sum all tiles of the residual into one TILE × TILE tile, then 2 × 2 chip sums."""
        if np.array_equal(lattice, _NOMINAL) and GRID % TILE == 0:
            n = GRID // TILE  # the unmoved lattice: tiles line up with the grid, a reshape folds them
            folded = residual.reshape(n, TILE, n, TILE).sum(axis=(0, 2), dtype=np.float64)
        else:
            folded = self._splat(residual, lattice)
        chipsum = folded + np.roll(folded, -1, 0)
        return chipsum + np.roll(chipsum, -1, 1)

    def _splat(self, residual: np.ndarray, lattice: np.ndarray) -> np.ndarray:
        margin = 3  # the residual's filters see the reflected border there
        values = residual[margin : GRID - margin, margin : GRID - margin].ravel()
        # working position p = u·v1 + v·v2 (u, v in tile units): solve for (u, v), scale to pixels.
        inverse = np.linalg.inv(lattice.T)
        uv = (inverse @ _grid_points(margin)) * TILE - 0.5
        u, v = uv[0], uv[1]
        u0, v0 = np.floor(u), np.floor(v)
        fu, fv = (u - u0).astype(np.float32), (v - v0).astype(np.float32)
        u0i, v0i = u0.astype(np.int64), v0.astype(np.int64)
        acc = np.zeros(TILE * TILE, np.float64)
        for du, dv, weight in (
            (0, 0, (1 - fu) * (1 - fv)),
            (1, 0, fu * (1 - fv)),
            (0, 1, (1 - fu) * fv),
            (1, 1, fu * fv),
        ):
            index = ((v0i + dv) % TILE) * TILE + (u0i + du) % TILE
            acc += np.bincount(index, weights=values * weight, minlength=TILE * TILE)
        return acc.reshape(TILE, TILE)

    def _sync(self, chipsum: np.ndarray) -> tuple[float, tuple[int, int]]:
        template_f, support_f = self._sync_spectrum
        corr = np.fft.irfft2(np.fft.rfft2(chipsum) * template_f, s=chipsum.shape)
        energy = np.fft.irfft2(np.fft.rfft2(chipsum * chipsum) * support_f, s=chipsum.shape)
        z = corr / np.sqrt(np.maximum(energy, 1e-9))
        index = int(np.argmax(z))
        dy, dx = divmod(index, TILE)
        return float(z.flat[index]), (dy, dx)

    def _read(self, chipsum: np.ndarray, shift: tuple[int, int]) -> tuple[bytes, int] | None:
        _, _, pay_idx, scramble, bit_of_chip = self._layout
        rows, cols = np.divmod(pay_idx, CHIPS)
        values = chipsum[(rows * CHIP + shift[0]) % TILE, (cols * CHIP + shift[1]) % TILE] * scramble
        soft = np.bincount(bit_of_chip, weights=values, minlength=self.n_bits)
        return ecc.decode_soft(soft, BCH_T)


_COMB_GRID = np.arange(PERIOD_RANGE[0], PERIOD_RANGE[1] + 0.001, 0.05)


def _fold_spectrum(power: np.ndarray) -> np.ndarray:
    """A full-length (two-sided) real power spectrum folded onto frequencies 0..GRID/2."""
    half = power[: GRID // 2 + 1].copy()
    half[1 : GRID // 2] += power[GRID - 1 : GRID // 2 : -1]
    return half


def _comb_periods(marginal: np.ndarray) -> list[float]:
    """The ``COMB_PEAKS`` periods whose harmonics stand out most in a one-sided marginal spectrum."""
    flat = marginal / np.maximum(ndimage.uniform_filter1d(marginal, COMB_SMOOTH, mode="nearest"), 1e-9)
    harmonics, valid = _comb_harmonics()
    values = np.interp(harmonics, np.arange(flat.size, dtype=np.float64), flat)
    scores = (values * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    picked: list[float] = []
    for i in np.argsort(-scores):
        if all(abs(_COMB_GRID[i] - p) > 1.0 for p in picked):
            picked.append(float(_COMB_GRID[i]))
        if len(picked) == COMB_PEAKS:
            break
    return picked


@lru_cache(maxsize=1)
def _comb_harmonics() -> tuple[np.ndarray, np.ndarray]:
    """Harmonic frequencies of every candidate period (rows) and which of them the comb sums."""
    k = np.arange(1, int(COMB_TOP * _COMB_GRID[-1] / GRID) + 2)
    harmonics = k[None, :] * (GRID / _COMB_GRID[:, None])
    valid = ((harmonics >= COMB_LOW) & (harmonics <= COMB_TOP)).astype(np.float64)
    return harmonics, valid


_REFINE_STEPS = [
    np.array([dx, dy]) for dx in (-0.6, 0.0, 0.6) for dy in (-0.6, 0.0, 0.6) if (dx, dy) != (0.0, 0.0)
]
#: Lattices the union bound counts. The candidates come from the content alone (autocorrelation and
#: comb peaks: a fixed set given the image, whatever the key), but the refinement grid sits around the
#: best-scoring candidate, which depends on the key: so the bound counts the refinement grid around
#: every candidate, as if all had been tried.
_CANDIDATES = 1 + PEAKS_PER_AXIS**2 + COMB_PEAKS**2
MAX_LATTICES = _CANDIDATES * (1 + len(_REFINE_STEPS))
_NOMINAL = np.array([[float(TILE), 0.0], [0.0, float(TILE)]])


@lru_cache(maxsize=4)
def _grid_points(margin: int) -> np.ndarray:
    """Pixel centres of the working grid inside ``margin``, as a 2 × N (x, y) array."""
    ys, xs = np.mgrid[margin : GRID - margin, margin : GRID - margin].astype(np.float64)
    return np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5])


def _parabolic(window: np.ndarray, i: int, j: int, axis: int) -> float:
    """Sub-pixel peak offset from the two neighbours along ``axis``."""
    n = window.shape[axis]
    k = j if axis == 1 else i
    if k == 0 or k == n - 1:
        return 0.0
    if axis == 1:
        a, b, c = window[i, j - 1], window[i, j], window[i, j + 1]
    else:
        a, b, c = window[i - 1, j], window[i, j], window[i + 1, j]
    denom = a - 2 * b + c
    if not math.isfinite(denom) or denom >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))


@codecs.register("image")
def _image_codec(key: bytes) -> ImageCodec:
    return ImageCodec(key)
