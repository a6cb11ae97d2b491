"""How well does the invisible watermark survive real life? synthgate vs. invisible-watermark, side by side.

Codecs (all in this one process, on the same images, with the same attacks):

* ``synthgate``: ``synthgate.labeling.watermark.image`` — 64-bit payload + BCH parity, keyed, with a
  calibrated detection threshold (p ≤ 1e-6);
* ``dwtDct``, ``dwtDctSvd``, ``rivaGan`` from ``invisible-watermark`` (imwatermark), 32-bit payloads
  (rivaGan supports only 32; dwtDct/dwtDctSvd are run at 32 bits too, their usual setting). rivaGan runs
  the ONNX models that ship inside the package, offline. imwatermark imports ``torch`` only to shuffle
  arrays around the ONNX calls; the package is installed with ``--no-deps`` (torch+CUDA would be several
  GB) and this script gives it a minimal numpy stand-in for exactly those calls (``_numpy_torch``).

Images: every natural photograph that ships inside scikit-image (no downloads) plus synthetic flat
posters, UI screenshots and flat/gradient images at 512², 1024² and 1920×1080.

"Recovered" means the payload read back is exactly the embedded one (all 64 bits for synthgate, all 32
for the peers). False positives: synthgate's detector on unmarked images with many keys (the empirical
side of the analytic p-value); the peers have no detection statistic, so their row gives the rate at
which an unmarked image decodes to the embedded bits (they always return *some* bits).

Run (one core, as the targets are stated)::

    .venv/bin/uv pip install --python .venv/bin/python --no-deps invisible-watermark
    OMP_NUM_THREADS=1 .venv/bin/python bench/watermark_robustness.py --write-docs

``--quick`` uses fewer images for a smoke run; ``--no-riva`` skips the slow rivaGan.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from synthgate.labeling.watermark.image import ImageCodec

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD64 = bytes.fromhex("5eed0001c0ffee42")
BITS32 = np.unpackbits(np.frombuffer(bytes.fromhex("a5c3f00d"), dtype=np.uint8)).tolist()
KEY = bytes(range(32))

# --- the torch stand-in imwatermark's rivaGan needs ----------------------------------------------------


class _T:
    """The handful of tensor operations imwatermark.rivaGan calls, on numpy arrays."""

    def __init__(self, a: Any) -> None:
        self.a = np.asarray(a)

    def __truediv__(self, o: float) -> _T:
        return _T(self.a / o)

    def __sub__(self, o: float) -> _T:
        return _T(self.a - o)

    def __add__(self, o: float) -> _T:
        return _T(self.a + o)

    def __mul__(self, o: float) -> _T:
        return _T(self.a * o)

    def __getitem__(self, k: Any) -> _T:
        return _T(self.a[k])

    def permute(self, *axes: int) -> _T:
        return _T(np.transpose(self.a, axes))

    def unsqueeze(self, d: int) -> _T:
        return _T(np.expand_dims(self.a, d))

    def detach(self) -> _T:
        return self

    def cpu(self) -> _T:
        return self

    def numpy(self) -> np.ndarray:
        return np.ascontiguousarray(self.a)


def _numpy_torch() -> types.ModuleType:
    mod = types.ModuleType("torch")
    mod.from_numpy = lambda a: _T(a)  # type: ignore[attr-defined]
    mod.clamp = lambda t, min, max: _T(np.clip(t.a, min, max))  # type: ignore[attr-defined]
    return mod


def load_peers(with_riva: bool) -> dict[str, Any]:
    import cv2

    stubbed = False
    try:
        import torch  # noqa: F401
    except ImportError:
        # Only while imwatermark is imported: its module keeps the reference, nobody else sees the stub.
        sys.modules["torch"], stubbed = _numpy_torch(), True
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    finally:
        if stubbed:
            del sys.modules["torch"]

    cv2.setNumThreads(1)
    peers: dict[str, Any] = {}
    methods = ["dwtDct", "dwtDctSvd"] + (["rivaGan"] if with_riva else [])
    if with_riva:
        import onnxruntime
        from imwatermark.rivaGan import RivaWatermark

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        here = Path(sys.modules["imwatermark"].__file__ or "").parent
        RivaWatermark.encoder = onnxruntime.InferenceSession(str(here / "rivagan_encoder.onnx"), options)
        RivaWatermark.decoder = onnxruntime.InferenceSession(str(here / "rivagan_decoder.onnx"), options)

    for method in methods:

        def embed(img: Image.Image, method: str = method) -> Image.Image:
            enc = WatermarkEncoder()
            enc.set_watermark("bits", BITS32)
            bgr = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)
            out = enc.encode(bgr, method)
            return Image.fromarray(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB))

        def read(img: Image.Image, method: str = method) -> bool:
            dec = WatermarkDecoder("bits", 32)
            bgr = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)
            try:
                bits = dec.decode(bgr, method)
            except Exception:
                return False
            return [int(b) for b in bits] == BITS32

        peers[method] = (embed, read)
    return peers


# --- images ---------------------------------------------------------------------------------------------

NATURAL = [
    "astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon", "coins",
    "retina", "hubble_deep_field", "immunohistochemistry", "cell", "microaneurysms",
    "page", "text",
]  # fmt: skip


def natural_images() -> list[tuple[str, Image.Image]]:
    from skimage import data

    out = []
    for name in NATURAL:
        try:
            arr = getattr(data, name)()
        except Exception as exc:  # a data set that is not bundled: say so, never download
            print(f"  skipping skimage.data.{name}: {exc}", file=sys.stderr)
            continue
        img = Image.fromarray(arr)
        out.append((f"skimage/{name}", img.convert("RGB") if img.mode not in ("RGB", "L") else img))
    return out


def poster(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(30, 230, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle(
            (x0, y0, x0 + int(rng.integers(w // 8, w // 2)), y0 + int(rng.integers(h // 8, h // 2))),
            fill=colour,
        )
        draw.ellipse((w - x0 - w // 4, h - y0 - h // 4, w - x0, h - y0), fill=colour[::-1])
    for k in range(4):
        draw.text((w // 10, h // 2 + 16 * k), "SUMMER SALE  -50%  synthgate  " * 2, fill=(255, 255, 255))
    return img


def screenshot(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, w, 40), fill=(35, 90, 200))
    draw.rectangle((0, 40, w // 5, h), fill=(245, 246, 248))
    for k in range(h // 18):
        words = " ".join(
            "".join(chr(97 + int(c)) for c in rng.integers(0, 26, int(rng.integers(2, 9)))) for _ in range(12)
        )
        draw.text((w // 5 + 12, 52 + 18 * k), words, fill=(20, 20, 20))
    for k in range(8):
        draw.text((10, 60 + 30 * k), f"Menu item {k}", fill=(60, 60, 60))
    return img


def flat(w: int, h: int, seed: int) -> Image.Image:
    if seed % 2:
        return Image.new("RGB", (w, h), (int(40 + 60 * seed) % 256, 120, 200))
    ramp = np.linspace(60, 200, w, dtype=np.float32)[None, :].repeat(h, 0)
    return Image.fromarray(np.stack([ramp, ramp * 0.8 + 20, 255 - ramp], 2).astype(np.uint8))


def synthetic_images(quick: bool) -> list[tuple[str, Image.Image]]:
    sizes = [(512, 512), (1024, 1024)] if quick else [(512, 512), (1024, 1024), (1920, 1080)]
    out = []
    for w, h in sizes:
        for kind, make in (("poster", poster), ("screenshot", screenshot), ("flat", flat)):
            for seed in (0, 1):
                out.append((f"{kind}-{w}x{h}-{seed}", make(w, h, seed)))
    return out


# --- attacks --------------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **options: Any) -> Image.Image:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _resize(img: Image.Image, f: float) -> Image.Image:
    return img.resize((max(8, round(img.width * f)), max(8, round(img.height * f))), Image.Resampling.LANCZOS)


def _crop(img: Image.Image, side: str) -> Image.Image:
    w, h = img.size
    if side == "centre":  # keep the middle 80 % of the area
        m = (1 - 0.8**0.5) / 2
        return img.crop((round(w * m), round(h * m), round(w * (1 - m)), round(h * (1 - m))))
    cut = {"left": (0.2, 0, 1, 1), "right": (0, 0, 0.8, 1), "top": (0, 0.2, 1, 1), "bottom": (0, 0, 1, 0.8)}[
        side
    ]
    return img.crop((round(w * cut[0]), round(h * cut[1]), round(w * cut[2]), round(h * cut[3])))


def _noise(img: Image.Image, sigma: float) -> Image.Image:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    arr = arr + np.random.default_rng(7).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _contrast(img: Image.Image, f: float) -> Image.Image:
    return ImageEnhance.Contrast(img.convert("RGB")).enhance(f)


def _screenshot(img: Image.Image) -> Image.Image:
    """A screen shows the image at 67 %, someone screenshots it (bilinear) and shares it as JPEG 80."""
    shown = img.convert("RGB").resize(
        (round(img.width * 0.67), round(img.height * 0.67)), Image.Resampling.BILINEAR
    )
    return _encode(shown, "JPEG", quality=80, subsampling=2)


def _rotate(img: Image.Image, deg: float) -> Image.Image:
    return img.convert("RGB").rotate(deg, Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none (PNG)": lambda i: i,
    "JPEG 90": lambda i: _encode(i, "JPEG", quality=90),
    "JPEG 70 4:2:0": lambda i: _encode(i, "JPEG", quality=70, subsampling=2),
    "JPEG 50 4:2:0": lambda i: _encode(i, "JPEG", quality=50, subsampling=2),
    "JPEG 50 4:4:4": lambda i: _encode(i, "JPEG", quality=50, subsampling=0),
    "WebP 75": lambda i: _encode(i, "WEBP", quality=75),
    "resize 0.5×": lambda i: _resize(i, 0.5),
    "resize 0.75×": lambda i: _resize(i, 0.75),
    "resize 1.5×": lambda i: _resize(i, 1.5),
    "resize 2×": lambda i: _resize(i, 2.0),
    "crop 20 % left": lambda i: _crop(i, "left"),
    "crop 20 % top": lambda i: _crop(i, "top"),
    "crop 20 % right": lambda i: _crop(i, "right"),
    "crop 20 % centre": lambda i: _crop(i, "centre"),
    "brightness +30 %": lambda i: ImageEnhance.Brightness(i.convert("RGB")).enhance(1.3),
    "brightness −30 %": lambda i: ImageEnhance.Brightness(i.convert("RGB")).enhance(0.7),
    "contrast +30 %": lambda i: _contrast(i, 1.3),
    "contrast −30 %": lambda i: _contrast(i, 0.7),
    "blur σ=1": lambda i: i.convert("RGB").filter(ImageFilter.GaussianBlur(1.0)),
    "noise σ=5/255": lambda i: _noise(i, 5.0),
    "screenshot 0.67× + JPEG 80": _screenshot,
    "rotate 1°": lambda i: _rotate(i, 1.0),
    "rotate 2° (stretch)": lambda i: _rotate(i, 2.0),
    "chain JPEG 50 + 0.5×": lambda i: _encode(_resize(i, 0.5), "JPEG", quality=50, subsampling=2),
    "chain crop 20 % + 0.75× + JPEG 70": lambda i: _encode(
        _resize(_crop(i, "left"), 0.75), "JPEG", quality=70, subsampling=2
    ),
    "chain 1.5× + blur + JPEG 60": lambda i: _encode(
        _resize(i, 1.5).filter(ImageFilter.GaussianBlur(1.0)), "JPEG", quality=60, subsampling=2
    ),
}

# --- measurement ----------------------------------------------------------------------------------------


def quality(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x, y = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
    return (
        float(min(peak_signal_noise_ratio(x, y, data_range=255), 99.0)),
        float(structural_similarity(x, y, channel_axis=2, data_range=255)),
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best * 1000


def run(args: argparse.Namespace) -> dict[str, Any]:
    images = natural_images() + synthetic_images(args.quick)
    if args.quick:
        images = images[:6] + images[-6:]
    codec = ImageCodec(KEY)
    codecs: dict[str, tuple[Callable[[Image.Image], Image.Image], Callable[[Image.Image], bool]]] = {
        "synthgate": (
            lambda img: codec.embed(img, PAYLOAD64),
            lambda img: codec.detect(img).payload == PAYLOAD64.hex(),
        )
    }
    if not args.no_peers:
        codecs.update(load_peers(not args.no_riva))
    results: dict[str, Any] = {}
    for name, (embed, read) in codecs.items():
        riva = name == "rivaGan"
        subset = [im for im in images if not riva or max(im[1].size) <= args.riva_max_side]
        if riva:  # ~3 s per embed or decode on one core: a subset, named in the table
            subset = subset[: args.riva_images]
        ok = {a: 0 for a in ATTACKS}
        tried = {a: 0 for a in ATTACKS}
        psnrs, ssims, unmarked_hits = [], [], 0
        failures: dict[str, list[str]] = {a: [] for a in ATTACKS}
        t0 = time.perf_counter()
        for label, img in subset:
            try:
                marked = embed(img)
            except Exception as exc:
                print(f"  {name}: cannot embed {label}: {exc}", file=sys.stderr)
                continue
            p, s = quality(img, marked)
            psnrs.append(p)
            ssims.append(s)
            unmarked_hits += bool(read(img.convert("RGB")))
            for attack, fn in ATTACKS.items():
                tried[attack] += 1
                if read(fn(marked)):
                    ok[attack] += 1
                else:
                    failures[attack].append(label)
        results[name] = {
            "images": len(psnrs),
            "psnr_mean": statistics.fmean(psnrs),
            "psnr_min": min(psnrs),
            "ssim_mean": statistics.fmean(ssims),
            "ssim_min": min(ssims),
            "recovery": {a: ok[a] / max(1, tried[a]) for a in ATTACKS},
            "failures": failures,
            "unmarked_decoded_as_payload": unmarked_hits / max(1, len(psnrs)),
        }
        print(f"  {name}: {len(psnrs)} images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # Speed at 1024×1024 on one core (best of n).
    probe = poster(1024, 1024, 3)
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC)
    for name, (embed, read) in codecs.items():
        speeds = []
        for img in (photo, probe):
            marked, e_ms = timed(lambda img=img, embed=embed: embed(img), 2 if name == "rivaGan" else 5)
            _, d_ms = timed(lambda marked=marked, read=read: read(marked), 2 if name == "rivaGan" else 5)
            speeds.append((e_ms, d_ms))
        results[name]["embed_ms"] = max(s[0] for s in speeds)
        results[name]["detect_ms"] = max(s[1] for s in speeds)
    results["calibration"] = calibrate(images, args.fpr_keys)
    return results


def calibrate(images: list[tuple[str, Image.Image]], keys: int) -> dict[str, Any]:
    """Empirical false positives of synthgate's detector: unmarked images × random keys.

    ``detected`` is the codec's own decision (p ≤ 1e-6, including the payload-assisted bound); the z
    shares are compared with the analytic sync-only bound at the largest search the detector made.
    """
    zs, hits, searched = [], 0, 0
    for k in range(keys):
        codec = ImageCodec(bytes([k % 256, k // 256]) * 16)
        for _, img in images:
            found = codec.detect(img)
            zs.append(found.score)
            hits += found.detected
            searched = max(searched, int(found.details.get("searched", 0)))
    arr = np.asarray(zs)
    trials = max(searched, 1)
    return {
        "detections": len(zs),
        "false_positives": hits,
        "trials": trials,
        "max_z": float(arr.max()),
        "share_z_ge_4": float(np.mean(arr >= 4.0)),
        "share_z_ge_5": float(np.mean(arr >= 5.0)),
        "bound_z_ge_4": float(min(1.0, trials * np.exp(-8.0))),
        "bound_z_ge_5": float(min(1.0, trials * np.exp(-12.5))),
        "z_needed": float(np.sqrt(2 * np.log(trials / 1e-6))),
    }


def table(results: dict[str, Any]) -> str:
    names = [n for n in results if n != "calibration"]
    head = "| attack | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    rows = []
    for attack in ATTACKS:
        cells = [f"{results[n]['recovery'][attack] * 100:.0f} %" for n in names]
        rows.append(f"| {attack} | " + " | ".join(cells) + " |")
    worst = [min(results[n]["recovery"].values()) * 100 for n in names]
    rows.append("| **worst single attack** | " + " | ".join(f"**{w:.0f} %**" for w in worst) + " |")
    rows.append("| images | " + " | ".join(str(results[n]["images"]) for n in names) + " |")
    rows.append(
        "| payload bits | " + " | ".join("64 + BCH" if n == "synthgate" else "32" for n in names) + " |"
    )
    rows.append(
        "| PSNR mean / min (dB) | "
        + " | ".join(f"{results[n]['psnr_mean']:.1f} / {results[n]['psnr_min']:.1f}" for n in names)
        + " |"
    )
    rows.append(
        "| SSIM mean / min | "
        + " | ".join(f"{results[n]['ssim_mean']:.3f} / {results[n]['ssim_min']:.3f}" for n in names)
        + " |"
    )
    rows.append(
        "| unmarked image decoded as the payload | "
        + " | ".join(f"{results[n]['unmarked_decoded_as_payload'] * 100:.0f} %" for n in names)
        + " |"
    )
    rows.append(
        "| embed ms, 1024², 1 core | " + " | ".join(f"{results[n]['embed_ms']:.0f}" for n in names) + " |"
    )
    rows.append(
        "| detect ms, 1024², 1 core | " + " | ".join(f"{results[n]['detect_ms']:.0f}" for n in names) + " |"
    )
    base = results["synthgate"]
    for n in names[1:]:
        rows.append(
            f"| ratio {n} / synthgate (embed, detect ms) | "
            + " | ".join(
                f"{results[n]['embed_ms'] / base['embed_ms']:.1f}×, "
                f"{results[n]['detect_ms'] / base['detect_ms']:.1f}×"
                if m == n
                else ""
                for m in names
            )
            + " |"
        )
    cal = results["calibration"]
    calib = (
        f"\nFalse positives of synthgate's detector (threshold p ≤ 1e-6, i.e. z ≥ {cal['z_needed']:.2f} over "
        f"up to {cal['trials']} searched offsets/lattices, or the payload-assisted bound when BCH decodes): "
        f"**{cal['false_positives']} of {cal['detections']}** "
        f"detections on unmarked images with random keys; largest z {cal['max_z']:.2f}; share with z ≥ 4: "
        f"{cal['share_z_ge_4']:.4f} (analytic bound {cal['bound_z_ge_4']:.3f}); "
        f"z ≥ 5: {cal['share_z_ge_5']:.5f} "
        f"(bound {cal['bound_z_ge_5']:.4f}).\n"
    )
    return head + "\n".join(rows) + "\n" + calib


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    heading = "## Invisible image watermark: synthgate vs. invisible-watermark"
    start_marker, end_marker = "<!-- watermark-bench:start -->", "<!-- watermark-bench:end -->"
    block = f"{start_marker}\n{text}{end_marker}"
    current = path.read_text() if path.exists() else "# Performance\n"
    if start_marker in current:
        before, rest = current.split(start_marker, 1)
        after = rest.split(end_marker, 1)[1]
        current = before + block + after
    else:
        if heading not in current:
            current = current.rstrip("\n") + f"\n\n{heading}\n\n"
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-riva", action="store_true")
    parser.add_argument(
        "--riva-max-side", type=int, default=1100, help="rivaGan takes seconds per large image"
    )
    parser.add_argument("--riva-images", type=int, default=6, help="rivaGan runs on the first N images only")
    parser.add_argument("--fpr-keys", type=int, default=100)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--failures", action="store_true", help="list the images each attack broke")
    args = parser.parse_args()
    results = run(args)
    text = table(results)
    print(text)
    if args.failures:
        for name, res in results.items():
            if name == "calibration":
                continue
            for attack, labels in res["failures"].items():
                if labels:
                    print(f"{name} / {attack}: {', '.join(labels)}")
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
