"""Keyed, resize- and crop-robust invisible image watermark ("tiled-grid" codec).

Design
======

*Working grid.* Both embedder and detector resample the luminance to a fixed square working grid
(per axis, whatever the image size). Any uniform or non-uniform resize of the whole
image therefore leaves the mark exactly where it was in working coordinates; only cropping (and
rotation) still moves it, and that is what the synchronisation below recovers. There are two
working grids (``GRIDS``): the fine one (``GRID`` = 256) and a coarse one (``COARSE_GRID`` = 128)
whose chips are twice as large in the image, so they survive JPEG 50 after a 0.5× downscale where
the fine chips (2 px after halving a 512 px image) do not. The coarse mark competes with far more
low-frequency content (photos, text), so the embedder uses it only when the detector, run on the
marked working grid, finds it with a wide margin (sync z ≥ ``COARSE_MIN_Z``: posters, flat
graphics, most screenshots ≥ 1024 px); everything else gets the fine grid. Video keeps the grid of
its first frame for every frame (``grid=``). The detector searches both grids.

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

*Detection.* The detector resamples to each working grid and whitens it (residual after a 3 × 3
mean, divided by its local spread and clipped, then damped where the spread is far above the
mark's, ``BUSY_SPREAD``: text strokes, edges and texture are content noise there). The nominal
lattice (no crop) of both grids is tried first with a reshape fold; when that does not settle it,
tile-lattice candidates come from the partly whitened autocorrelation (sharp peaks near (TILE, 0)
and (0, TILE), moved by crop and tilted by rotation) and from a comb search per axis over the
marginal power spectrum (sums only the harmonics of each candidate period: crops rescale each axis
on its own), and undecided results get a small refinement grid around the best lattice. Each lattice folds the
whole residual into one tile (bilinear splatting) and the keyed sync sequence is cross-correlated
with it at all ``TILE²`` cyclic offsets with FFTs. The payload is read at the best offset: soft
values per coded bit, BCH (t = 8) with Chase-II soft decoding, a consistency check against the
shortened code's miscorrections. The search stops at the first lattice whose sync alone passes
the threshold and whose payload decodes (the grid whose nominal lattice scored higher is searched
first).

*Limits* (measured in ``bench/watermark_robustness.py``, docs/performance.md): at PSNR ≥ 42 dB dense
fine texture (grass, gravel) leaves z ≈ 4 even untouched; brightening +30 % saturates white
backgrounds at 255 and the mark with them (screenshots ≥ 1024 px); photos and text pages ≤ 512 px
stay on the fine grid (chips ≤ 4 px), so JPEG 50 after a 0.5× resize often leaves their payload
unreadable.

*Calibrated false positives.* For content without the mark, and key signs s independent of it,
``z = Σ s·x / ‖x‖`` obeys Hoeffding's bound P(z ≥ t) ≤ exp(−t²/2) for every image x. A union bound
over the ``TILE²`` offsets and ``MAX_LATTICES`` lattices of each of the two grids gives the
reported p-value (stopping early only ever tries fewer); ``detected`` means p ≤ ``max_p_value``
(1e-6 by default). When the sync alone falls short, a payload that BCH
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
COARSE_GRID = 128  # the coarse working grid (chips twice as large) for flat graphics
GRIDS = (GRID, COARSE_GRID)  # the detector searches both
COARSE_MIN_Z = 11.5  # sync z (untouched) the coarse grid must reach on an image, else the fine grid
CHIP = 2  # working pixels per chip side
CHIPS = 32  # chips per tile side
TILE = CHIP * CHIPS  # tile side in working pixels (4 × 4 tiles on the grid; a power of two)
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
BUSY_SPREAD = 2.0  # grey levels: residual samples with a larger local spread are damped
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


def _grid(image: Image.Image, size: int = GRID) -> np.ndarray:
    """An 8-bit or float Pillow image resampled to a ``size × size`` working grid, as float32."""
    return np.array(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _residual(grid: np.ndarray) -> np.ndarray:
    """Whitened working grid: the detail a 3 × 3 mean does not predict, divided by its local spread.

    Dividing by the local spread weights each sample by how much the content hides the mark there
    (textured areas and text edges count less), and the clip bounds any single outlier. Where the
    spread is far above the mark's own (``BUSY_SPREAD``: text, edges, texture) the sample is mostly
    content noise, so it is damped further, towards the 1/spread² weight of an optimal combiner.
    """
    res = grid - ndimage.uniform_filter(grid, size=RESIDUAL_SIZE, mode="reflect")
    spread = np.sqrt(np.maximum(ndimage.uniform_filter(res * res, size=5, mode="reflect"), 0.0))
    white = np.clip(res / (spread + 0.25), -2.5, 2.5)
    return (white * (BUSY_SPREAD / (spread + BUSY_SPREAD))).astype(np.float32)


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


def _spread(chips: np.ndarray, size: int) -> np.ndarray:
    """Chip values to a whole working grid (each chip CHIP × CHIP pixels, tiles repeated)."""
    tile = np.kron(chips, np.ones((CHIP, CHIP), np.float32))
    reps = -(-size // TILE)
    return np.tile(tile, (reps, reps))[:size, :size]


_Candidate = tuple[float, np.ndarray, tuple[int, int], np.ndarray, int]  # z, chip sums, offset, lattice, grid


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

    def embed(self, media: Image.Image, payload: bytes, *, grid: int | None = None) -> Image.Image:
        """Mark ``media``. ``grid`` forces a working grid (one of ``GRIDS``; video keeps one for all
        frames); by default the coarse grid is used when it holds on this image (``COARSE_MIN_Z``)."""
        if len(payload) != PAYLOAD_BYTES:
            raise ValueError(f"payload must be {PAYLOAD_BYTES} bytes")
        if grid is not None and grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}")
        width, height = media.size
        if min(width, height) < MIN_SIDE:
            raise NotEmbeddable(
                f"image {width}×{height} is too small to carry the watermark (needs ≥ {MIN_SIDE} px per side)"
            )
        planes = _split(media)
        change, _ = self._plan(planes, payload, grid)
        delta = _resize(change, width, height)
        return _join(planes, delta)

    def choose_grid(self, media: Image.Image, payload: bytes) -> int:
        """The working grid ``embed`` would use for this image by default."""
        return self._plan(_split(media), payload, None)[1]

    def _plan(self, planes: _Planes, payload: bytes, grid: int | None) -> tuple[np.ndarray, int]:
        """The luminance change on the working grid, and that grid's size."""
        luma = planes.luma_image(precise=False)  # only shapes the mask: 8 bits are plenty
        brightest, darkest = planes.extremes()
        change = np.zeros(0, np.float32)
        size = GRID
        for size in (COARSE_GRID, GRID) if grid is None else (grid,):
            working = _grid(luma, size)
            change = self._change(payload, working, _grid(brightest, size), _grid(darkest, size))
            # The coarse grid's larger chips survive JPEG after downscaling far better, but where the
            # content has much low-frequency detail (photos, text) it hides the coarse mark: keep the
            # coarse grid only when the detector, run on the result, still finds it with a wide margin.
            if grid is not None or size == GRID:
                break
            if self._try(_residual(working + np.rint(change)), _NOMINAL, size)[0] >= COARSE_MIN_Z:
                break
        return change, size

    def _change(
        self, payload: bytes, grid: np.ndarray, brightest: np.ndarray, darkest: np.ndarray
    ) -> np.ndarray:
        """The luminance change on one working grid: the amplitude-shaped pattern plus the tone offset."""
        size = grid.shape[0]
        unit = ndimage.gaussian_filter(_spread(self._chips(payload), size), CHIP_SMOOTH, mode="wrap")
        cap = _ssim_cap(grid, darkest)
        # Smooth tone offset where a whole neighbourhood is near white, so both signs of the pattern
        # fit below 255 (white screenshot backgrounds would otherwise clip half of it away). It is
        # smooth, so it carries no structure of its own and the detector's high-pass ignores it. Near
        # black no offset is added: SSIM's luminance term punishes any shift of a dark mean, so the
        # cap keeps the pattern small there instead and clipping costs little.
        local_top = ndimage.maximum_filter(brightest, size=5)
        offset = ndimage.gaussian_filter(np.minimum(0.0, 255.0 - HEADROOM * cap - local_top), 2.0)
        offset_ms = float(np.mean(offset * offset))
        if offset_ms > 0.5 * TARGET_RMS**2:  # the offset gets at most half of the PSNR budget
            offset *= np.sqrt(0.5 * TARGET_RMS**2 / offset_ms)
            offset_ms = 0.5 * TARGET_RMS**2
        amplitude = _water_fill(cap, unit * unit, TARGET_RMS**2 - offset_ms)
        return (amplitude * unit + offset).astype(np.float32)

    # --- detection ------------------------------------------------------------------------------

    def detect(self, media: Image.Image, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection:
        width, height = media.size
        if min(width, height) < 32:
            return Detection(False, None, 1.0, 0.0, self.name, details={"reason": "image too small"})
        if media.mode in ("RGB", "L"):  # the common case: no copy of the colour samples needed
            luma = (media if media.mode == "L" else media.convert("L")).convert("F")
        else:
            try:
                luma = _split(media).luma_image()
            except NotEmbeddable as exc:
                return Detection(False, None, 1.0, 0.0, self.name, details={"reason": exc.message})
        residuals = {size: _residual(_grid(luma, size)) for size in GRIDS}
        # The union bound counts every lattice the search may try (``MAX_LATTICES`` per grid), whether
        # or not it gets that far, so stopping early at a confident lattice keeps the bound valid.
        trials = TILE * TILE * MAX_LATTICES * len(GRIDS)
        found: list[_Candidate] = []
        decoded: tuple[bytes, int] | None = None
        winner: _Candidate | None = None

        def settled(candidate: _Candidate) -> bool:
            """Record a candidate; True (stop searching) when its sync alone passes and BCH decodes."""
            nonlocal decoded, winner
            found.append(candidate)
            if union_bound_p_value(candidate[0], trials) <= max_p_value:
                decoded = self._read(candidate[1], candidate[2])
                winner = candidate if decoded is not None else winner
            return decoded is not None

        done = any(settled(self._try(residuals[size], _NOMINAL, size)) for size in GRIDS)
        if not done:  # the grid whose nominal lattice scored higher is searched first
            order = [candidate[4] for candidate in sorted(found, key=lambda item: -item[0])]
            done = any(
                settled(self._try(residuals[size], lattice, size))
                for size in order
                for lattice in self._lattices(residuals[size])[1:]
            )
        found.sort(key=lambda item: -item[0])
        if not done and found[0][0] >= REFINE_MIN_Z:
            # Undecided: the peak picking may be a fraction of a pixel off (the fold drifts
            # across the tiles). Try a small grid of periods around the best lattice.
            base, size = found[0][3], found[0][4]
            any(settled(self._try(residuals[size], base + np.diag(step), size)) for step in _REFINE_STEPS)
            found.sort(key=lambda item: -item[0])
        best = winner if winner is not None else found[0]
        z, _, shift, lattice, size = best
        p_value = union_bound_p_value(z, trials)
        if decoded is None and p_value > max_p_value:
            # Payload-assisted decision. Without the mark, the coded bits read at any offset are
            # uniform and independent of the sync score (disjoint chips, independent key signs), so
            # "sync z ≥ z₀ and the BCH decoder accepts" has probability ≤ e^(−z₀²/2) · P_false_decode
            # per trial, and the union bound over the trials still holds.
            for z_c, chipsum_c, shift_c, lattice_c, size_c in found:
                p_c = union_bound_p_value(z_c, trials) * ecc.false_decode_probability(BCH_T)
                if p_c > max_p_value:
                    break
                decoded = self._read(chipsum_c, shift_c)
                if decoded is not None:
                    z, shift, lattice, size, p_value = z_c, shift_c, lattice_c, size_c, p_c
                    break
        detected = p_value <= max_p_value
        details: dict[str, Any] = {
            "grid": size,
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

    def _try(self, residual: np.ndarray, lattice: np.ndarray, size: int) -> _Candidate:
        chipsum = self._fold(residual, lattice)
        z, shift = self._sync(chipsum)
        return z, chipsum, shift, lattice, size

    def _lattices(self, residual: np.ndarray) -> list[np.ndarray]:
        """Tile lattice candidates: rows are the two period vectors (dx, dy) in working pixels."""
        spectrum = np.fft.rfft2(residual)
        power = (spectrum * np.conj(spectrum)).real
        # Partly whitened (|F|^(2 - AUTO_WHITEN)): a broadband periodic tile stands out against the
        # few strong harmonics of text lines or regular textures.
        auto = np.fft.irfft2(power / np.maximum(power, 1e-9) ** (AUTO_WHITEN / 2), s=residual.shape)
        size = residual.shape[0]
        lo, hi = PERIOD_RANGE
        found: list[list[np.ndarray]] = []
        for axis in (0, 1):
            lags_along = np.arange(lo, hi + 1)
            lags_across = np.arange(-SKEW, SKEW + 1)
            if axis == 0:  # horizontal period: lag x along, lag y across
                window = auto[np.ix_(lags_across % size, lags_along % size)]
            else:
                window = auto[np.ix_(lags_along % size, lags_across % size)].T
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
        periods_y = _comb_periods(_fold_spectrum(power.sum(axis=1)), size)
        for px in _comb_periods(power.sum(axis=0), size):
            for py in periods_y:
                lattice = np.array([[px, 0.0], [0.0, py]])
                if all(np.abs(lattice - other).max() > 0.3 for other in lattices):
                    lattices.append(lattice)
        return lattices

    def _fold(self, residual: np.ndarray, lattice: np.ndarray) -> np.ndarray:
        """Sum all tiles of the residual into one TILE × TILE tile, then 2 × 2 chip sums."""
        n = residual.shape[0] // TILE
        if np.array_equal(lattice, _NOMINAL) and n * TILE == residual.shape[0]:
            # the unmoved lattice: tiles line up with the grid, a reshape folds them
            folded = residual.reshape(n, TILE, n, TILE).sum(axis=(0, 2), dtype=np.float64)
        else:
            folded = self._splat(residual, lattice)
        chipsum = folded + np.roll(folded, -1, 0)
        return chipsum + np.roll(chipsum, -1, 1)

    def _splat(self, residual: np.ndarray, lattice: np.ndarray) -> np.ndarray:
        margin = 3  # the residual's filters see the reflected border there
        size = residual.shape[0]
        values = residual[margin : size - margin, margin : size - margin].ravel()
        # working position p = u·v1 + v·v2 (u, v in tile units): solve for (u, v), scale to pixels.
        # The map is affine, so u and v over the grid are outer sums of per-row and per-column terms.
        inverse = np.linalg.inv(lattice.T) * TILE
        centres = np.arange(margin, size - margin, dtype=np.float32) + np.float32(0.5)
        u = (inverse[0, 0] * centres)[None, :] + (inverse[0, 1] * centres - 0.5)[:, None]
        v = (inverse[1, 0] * centres)[None, :] + (inverse[1, 1] * centres - 0.5)[:, None]
        u0, v0 = np.floor(u), np.floor(v)
        fu, fv = (u - u0).ravel(), (v - v0).ravel()
        wrap = TILE - 1  # TILE is a power of two: & wraps the indices
        u0i, v0i = u0.astype(np.int32).ravel(), v0.astype(np.int32).ravel()
        u1i, row0, row1 = (u0i + 1) & wrap, (v0i & wrap) * TILE, ((v0i + 1) & wrap) * TILE
        u0i &= wrap
        low = values * fv  # the share of each sample on the next row
        high = values - low
        acc = np.bincount(row0 + u0i, high - high * fu, TILE * TILE)
        acc += np.bincount(row0 + u1i, high * fu, TILE * TILE)
        acc += np.bincount(row1 + u0i, low - low * fu, TILE * TILE)
        acc += np.bincount(row1 + u1i, low * fu, TILE * TILE)
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
    """A full-length (two-sided) real power spectrum folded onto frequencies 0..size/2."""
    size = power.shape[0]
    half = power[: size // 2 + 1].copy()
    half[1 : size // 2] += power[size - 1 : size // 2 : -1]
    return half


def _comb_periods(marginal: np.ndarray, size: int) -> list[float]:
    """The ``COMB_PEAKS`` periods whose harmonics stand out most in a one-sided marginal spectrum."""
    flat = marginal / np.maximum(ndimage.uniform_filter1d(marginal, COMB_SMOOTH, mode="nearest"), 1e-9)
    harmonics, valid = _comb_harmonics(size)
    values = np.interp(harmonics, np.arange(flat.size, dtype=np.float64), flat)
    scores = (values * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    picked: list[float] = []
    for i in np.argsort(-scores):
        if all(abs(_COMB_GRID[i] - p) > 1.0 for p in picked):
            picked.append(float(_COMB_GRID[i]))
        if len(picked) == COMB_PEAKS:
            break
    return picked


@lru_cache(maxsize=len(GRIDS))
def _comb_harmonics(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic frequencies of every candidate period (rows) and which of them the comb sums."""
    low, top = COMB_LOW * size / GRID, COMB_TOP * size / GRID  # the same harmonics on any grid
    k = np.arange(1, int(top * _COMB_GRID[-1] / size) + 2)
    harmonics = k[None, :] * (size / _COMB_GRID[:, None])
    valid = ((harmonics >= low) & (harmonics <= top)).astype(np.float64)
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
