"""Audio watermark robustness and quality: synthgate's ``audio`` codec on speech from espeak-ng.

Speech: espeak-ng (Debian package, in the Makefile's SYSTEM_PACKAGES) reads short texts in several
voices and languages; each clip is resampled to 48 kHz (a typical TTS output rate) and marked with a
64-bit payload. Attacks run through ffmpeg (MP3 64 kbit/s, AAC 64 kbit/s, 48 → 16 kHz, high-pass
500 Hz, low-pass 4 kHz) or numpy (white noise at 20 dB SNR, volume ×0.5 / ×1.5 with clipping);
detection then sees a random 5 s excerpt of the attacked file. Quality: SNR of the mark and PESQ
(ITU-T P.862, ``pesq`` package, wide-band at 16 kHz and narrow-band at 8 kHz) against the unmarked
clip. False positives: the detector on unmarked clips with many keys.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/watermark_audio.py [--write-docs]``
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import soundfile as sf
from scipy import signal

from synthgate.labeling.watermark.audio import Audio, AudioCodec

ROOT = Path(__file__).resolve().parent.parent
KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("5eed0001c0ffee42")
RATE = 48_000

TEXTS = [
    ("en-us", "The quick brown fox jumps over the lazy dog. Generative models now produce speech that is "
     "hard to tell apart from a real person, which is why every output carries a label and an invisible "
     "watermark that survives compression, resampling and noise."),
    ("en-gb", "Please read the terms of service before you continue. Your request has been received and "
     "will be processed within three working days. Thank you for your patience, and have a pleasant day."),
    ("cmn", "生成式人工智能服务提供者应当对生成合成内容添加显式标识和隐式标识。"
     "本段语音由人工智能合成，请注意辨别，不要轻信来历不明的电话和语音消息。"),
    ("de", "Dieser Text wurde von einer Maschine gesprochen. Bitte prüfen Sie Angaben zu Konten, Zahlungen "
     "und Passwörtern immer über einen zweiten, unabhängigen Weg."),
    ("fr", "Ce message a été généré automatiquement. Il contient un filigrane invisible qui permet de "
     "retrouver son origine, même après compression et rééchantillonnage."),
    ("es", "Este audio fue generado por inteligencia artificial. La marca de agua invisible resiste la "
     "compresión, el cambio de volumen y el ruido de fondo."),
]  # fmt: skip
VARIANTS = [("", 150, 50), ("+f3", 175, 40), ("+m3", 130, 60)]  # voice variant, words/min, pitch


def speech(voice: str, text: str, variant: str, speed: int, pitch: int) -> Audio:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice + variant, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    g = math.gcd(RATE, rate)
    up = signal.resample_poly(data, RATE // g, rate // g, axis=0).astype(np.float32)
    return Audio(np.clip(up * 0.9 / max(1e-6, float(np.abs(up).max())), -1, 1), RATE)


def _ffmpeg(audio: Audio, out_args: list[str], in_fmt: str = "wav") -> Audio:
    buffer = io.BytesIO()
    sf.write(buffer, audio.samples, audio.rate, format="WAV", subtype="PCM_16")
    with tempfile.TemporaryDirectory() as tmp:
        src, mid = Path(tmp) / "in.wav", Path(tmp) / f"mid.{in_fmt}"
        src.write_bytes(buffer.getvalue())
        run = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
        subprocess.run([*run, "-i", str(src), *out_args, str(mid)], check=True)
        back = Path(tmp) / "back.wav"
        subprocess.run([*run, "-i", str(mid), str(back)], check=True)
        data, rate = sf.read(back, dtype="float32", always_2d=True)
    return Audio(data, rate)


def _noise(audio: Audio, snr_db: float) -> Audio:
    power = float(np.mean(audio.samples.astype(np.float64) ** 2))
    rng = np.random.default_rng(11)
    noise = rng.normal(0, math.sqrt(power / 10 ** (snr_db / 10)), audio.samples.shape)
    return Audio((audio.samples + noise).astype(np.float32), audio.rate)


def _volume(audio: Audio, factor: float) -> Audio:
    return Audio(np.clip(audio.samples * factor, -1, 1).astype(np.float32), audio.rate)


ATTACKS: dict[str, Callable[[Audio], Audio]] = {
    "none (WAV 16-bit)": lambda a: _ffmpeg(a, ["-c:a", "pcm_s16le"]),
    "MP3 64 kbit/s": lambda a: _ffmpeg(a, ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
    "AAC 64 kbit/s": lambda a: _ffmpeg(a, ["-c:a", "aac", "-b:a", "64k"], "m4a"),
    "resample 48 → 16 kHz": lambda a: _ffmpeg(a, ["-ar", "16000"]),
    "white noise 20 dB SNR": lambda a: _noise(a, 20.0),
    "high-pass 500 Hz": lambda a: _ffmpeg(a, ["-af", "highpass=f=500"]),
    "low-pass 4 kHz": lambda a: _ffmpeg(a, ["-af", "lowpass=f=4000"]),
    "volume ×0.5": lambda a: _volume(a, 0.5),
    "volume ×1.5 (clipping)": lambda a: _volume(a, 1.5),
    "chain 16 kHz + MP3 64k + noise 30 dB": lambda a: _noise(
        _ffmpeg(_ffmpeg(a, ["-ar", "16000"]), ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"), 30.0
    ),
}


def excerpt(audio: Audio, seconds: float, rng: np.random.Generator) -> Audio:
    n = int(seconds * audio.rate)
    if audio.samples.shape[0] <= n:
        return audio
    start = int(rng.integers(0, audio.samples.shape[0] - n))
    return Audio(audio.samples[start : start + n], audio.rate)


def quality(ref: Audio, marked: Audio) -> tuple[float, float, float]:
    from pesq import pesq

    x, y = ref.samples.mean(axis=1).astype(np.float64), marked.samples.mean(axis=1).astype(np.float64)
    snr = 10 * math.log10(float(np.sum(x * x)) / max(1e-20, float(np.sum((y - x) ** 2))))
    x16, y16 = (signal.resample_poly(v, 1, 3) for v in (x, y))
    x8, y8 = (signal.resample_poly(v, 1, 6) for v in (x, y))
    return snr, float(pesq(16000, x16, y16, "wb")), float(pesq(8000, x8, y8, "nb"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    codec = AudioCodec(KEY)
    clips = [
        (f"{voice}{variant or ''}", speech(voice, text, variant, speed, pitch))
        for voice, text in TEXTS[: args.texts]
        for variant, speed, pitch in VARIANTS[: args.variants]
    ]
    rng = np.random.default_rng(5)
    ok = {a: 0 for a in ATTACKS}
    detected = {a: 0 for a in ATTACKS}
    snrs, wbs, nbs, embed_ms, detect_ms, failures = [], [], [], [], [], []
    for label, clip in clips:
        t0 = time.perf_counter()
        marked = codec.embed(clip, PAYLOAD)
        embed_ms.append((time.perf_counter() - t0) * 1000 / clip.seconds)  # per second of audio
        snr, wb, nb = quality(clip, marked)
        snrs.append(snr)
        wbs.append(wb)
        nbs.append(nb)
        row = []
        for attack, fn in ATTACKS.items():
            part = excerpt(fn(marked), args.seconds, rng)
            t0 = time.perf_counter()
            found = codec.detect(part)
            detect_ms.append((time.perf_counter() - t0) * 1000)
            ok[attack] += found.payload == PAYLOAD.hex()
            detected[attack] += found.detected
            mark = "+" if found.payload == PAYLOAD.hex() else ("d" if found.detected else "-")
            row.append(f"{mark}{found.score:.0f}")
            if found.payload != PAYLOAD.hex():
                failures.append(f"{label}/{attack}")
        head = f"  {label:10s} {clip.seconds:4.1f}s SNR {snr:.1f} PESQ wb {wb:.2f} nb {nb:.2f}  "
        print(head + " ".join(row), file=sys.stderr, flush=True)
    # False positives: unmarked clips, many keys, random 5 s excerpts.
    zs, fps = [], 0
    for k in range(args.fpr_keys):
        other = AudioCodec(bytes([k % 256, 7]) * 16)
        for _, clip in clips[:: max(1, len(clips) // 4)]:
            found = other.detect(excerpt(clip, args.seconds, rng))
            zs.append(found.score)
            fps += found.detected
    n = len(clips)
    return {
        "clips": n,
        "recovery": {a: ok[a] / n for a in ATTACKS},
        "detected": {a: detected[a] / n for a in ATTACKS},
        "snr": (statistics.fmean(snrs), min(snrs)),
        "pesq_wb": (statistics.fmean(wbs), min(wbs)),
        "pesq_nb": (statistics.fmean(nbs), min(nbs)),
        "embed_ms_per_s": statistics.fmean(embed_ms),
        "detect_ms": statistics.fmean(detect_ms),
        "fp": (fps, len(zs), max(zs) if zs else 0.0),
        "failures": failures,
        "seconds": args.seconds,
    }


def table(res: dict[str, Any]) -> str:
    rows = [
        "| attack (detected on a random 5 s excerpt) | payload recovered | mark detected |",
        "|---|---|---|",
    ]
    for a in ATTACKS:
        rows.append(f"| {a} | {res['recovery'][a] * 100:.0f} % | {res['detected'][a] * 100:.0f} % |")
    rows += [
        f"| clips (espeak-ng speech, 48 kHz) | {res['clips']} | |",
        f"| SNR mean / min (dB) | {res['snr'][0]:.1f} / {res['snr'][1]:.1f} | |",
        f"| PESQ wide-band mean / min | {res['pesq_wb'][0]:.2f} / {res['pesq_wb'][1]:.2f} | |",
        f"| PESQ narrow-band mean / min | {res['pesq_nb'][0]:.2f} / {res['pesq_nb'][1]:.2f} | |",
        f"| false positives on unmarked 5 s excerpts (random keys) | {res['fp'][0]} of {res['fp'][1]} "
        f"(largest z {res['fp'][2]:.2f}) | |",
        f"| embed ms per second of 48 kHz audio, 1 core | {res['embed_ms_per_s']:.0f} | |",
        f"| detect ms per 5 s excerpt, 1 core | {res['detect_ms']:.0f} | |",
    ]
    return "\n".join(rows) + "\n"


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    start, end = "<!-- watermark-audio-bench:start -->", "<!-- watermark-audio-bench:end -->"
    block = f"{start}\n{text}{end}"
    current = path.read_text()
    if start in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n## Invisible audio watermark (issue 4)\n\n" + block + "\n"
    path.write_text(current)


def main() -> None:
    if shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None:
        sys.exit("needs espeak-ng and ffmpeg (make system-deps)")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=len(TEXTS))
    parser.add_argument("--variants", type=int, default=len(VARIANTS))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fpr-keys", type=int, default=50)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    res = run(args)
    text = table(res)
    print(text)
    if res["failures"]:
        print("failures: " + ", ".join(res["failures"]), file=sys.stderr)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
