"""The keyed audio watermark on real speech (espeak-ng): quality, robustness, key separation, bad input."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from synthgate.labeling.watermark import NotEmbeddable, codecs
from synthgate.labeling.watermark.audio import Audio, AudioCodec

KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("5eed0000c0ffee42")
TEXT = (
    "Generative models now produce speech that is hard to tell apart from a real person. "
    "That is why every output carries a label and an invisible watermark that survives "
    "resampling, filtering and a change of volume."
)


def speech(tmp: Path, rate: int = 48_000) -> Audio:
    """Speech synthesized by espeak-ng (a system package of the project), resampled to ``rate``."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run `make system-deps`")
    out = tmp / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), TEXT], check=True)
    data, native = sf.read(out, dtype="float32", always_2d=True)
    g = math.gcd(rate, native)
    up = signal.resample_poly(data, rate // g, native // g, axis=0)
    return Audio((0.9 * up / np.abs(up).max()).astype(np.float32), rate)


def ffmpeg(audio: Audio, tmp: Path, *args: str, ext: str = "wav") -> Audio:
    src, dst = tmp / "in.wav", tmp / f"out.{ext}"
    sf.write(src, audio.samples, audio.rate, subtype="PCM_16")
    run = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*run, "-i", str(src), *args, str(dst)], check=True)
    data, rate = sf.read(dst, dtype="float32", always_2d=True)
    return Audio(data, rate)


def window(audio: Audio, start_s: float, seconds: float = 5.0) -> Audio:
    a = int(start_s * audio.rate)
    return Audio(audio.samples[a : a + int(seconds * audio.rate)], audio.rate)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Audio, Audio]:
    clean = speech(tmp_path_factory.mktemp("speech"))
    return clean, AudioCodec(KEY).embed(clean, PAYLOAD)


def test_lm5_audio_round_trip_from_any_five_seconds(clips: tuple[Audio, Audio]) -> None:
    _, marked = clips
    for start in (0.0, 1.37, 3.9):
        found = AudioCodec(KEY).detect(window(marked, start))
        assert found.detected and found.payload == PAYLOAD.hex()
        assert found.p_value <= 1e-6


def test_lm5_audio_quality_snr_and_pesq(clips: tuple[Audio, Audio]) -> None:
    from pesq import pesq

    clean, marked = clips
    x, y = clean.samples[:, 0].astype(np.float64), marked.samples[:, 0].astype(np.float64)
    snr = 10 * np.log10(np.sum(x * x) / np.sum((y - x) ** 2))
    assert snr >= 35.0
    x16, y16 = signal.resample_poly(x, 1, 3), signal.resample_poly(y, 1, 3)
    assert pesq(16000, x16, y16, "wb") >= 4.0


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("resample 48 -> 16 kHz", ("-ar", "16000")),
        ("high-pass 500 Hz", ("-af", "highpass=f=500")),
        ("low-pass 4 kHz", ("-af", "lowpass=f=4000")),
        ("volume x0.5", ("-af", "volume=0.5")),
        ("volume x1.5, clipped to 16 bit", ("-af", "volume=1.5")),
    ],
)
def test_dsp18_audio_survives(
    clips: tuple[Audio, Audio], tmp_path: Path, name: str, args: tuple[str, ...]
) -> None:
    _, marked = clips
    attacked = ffmpeg(marked, tmp_path, *args)
    found = AudioCodec(KEY).detect(window(attacked, 2.0))
    assert found.payload == PAYLOAD.hex(), name


def test_lm5_audio_without_the_key_nothing_is_read(clips: tuple[Audio, Audio]) -> None:
    clean, marked = clips
    assert not AudioCodec(bytes(range(1, 33))).detect(marked).detected
    scores = [AudioCodec(bytes([k, 9]) * 16).detect(window(clean, 1.0)).score for k in range(12)]
    # z ≈ 7.1 is what p = 1e-6 needs over the searched offsets (sub-Gaussian scale, where the null
    # maximum over ~41 000 searched alignments sits near 4.6); unmarked speech stays below it.
    assert max(scores) < 6.0


def test_lm5_silent_and_short_audio_are_not_embeddable() -> None:
    codec = codecs.create("audio", KEY)
    with pytest.raises(NotEmbeddable, match="silent"):
        codec.embed(Audio(np.zeros((48_000 * 6, 1), np.float32), 48_000), PAYLOAD)
    with pytest.raises(NotEmbeddable, match="too short"):
        codec.embed(Audio(np.full((48_000, 1), 0.1, np.float32), 48_000), PAYLOAD)
    assert not codec.detect(Audio(np.zeros((48_000 * 6, 2), np.float32), 48_000)).detected


def test_lm5_audio_keeps_channels_and_rate(clips: tuple[Audio, Audio]) -> None:
    clean, _ = clips
    stereo = Audio(np.repeat(clean.samples, 2, axis=1) * np.array([1.0, 0.5], np.float32), clean.rate)
    marked = AudioCodec(KEY).embed(stereo, PAYLOAD)
    assert marked.samples.shape == stereo.samples.shape and marked.rate == stereo.rate
    buffer = io.BytesIO()
    sf.write(buffer, marked.samples, marked.rate, format="FLAC")
    back, rate = sf.read(io.BytesIO(buffer.getvalue()), dtype="float32", always_2d=True)
    assert AudioCodec(KEY).detect(Audio(back, rate)).payload == PAYLOAD.hex()
