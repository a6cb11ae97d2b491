"""Real faces and real speech for the consent tests.

Faces: scikit-image's astronaut photograph (Eileen Collins, NASA) and faces from its LFW subset
(Labeled Faces in the Wild, 25x25 crops, enlarged). Speech: espeak-ng, synthesised on the fly
(a Debian package the Makefile installs); different espeak voices stand for different speakers.
Music: a few bars of plucked notes over a held chord, synthesised here (no package ships music).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

LFW = Path(__import__("skimage").__file__).parent / "data" / "lfw_subset.npy"


def encode(rgb: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return buffer.getvalue()


@cache
def astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


def astronaut_png() -> bytes:
    return encode(astronaut())


def lfw_face(index: int, size: int = 100) -> np.ndarray:
    """One LFW face, enlarged to ``size`` px, on a neutral 2x canvas (RGB)."""
    faces = np.load(LFW)
    face = (faces[index] * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((size, size), Image.Resampling.BICUBIC))
    canvas = np.full((size * 2, size * 2, 3), 128, np.uint8)
    canvas[size // 2 : size // 2 + size, size // 2 : size // 2 + size] = np.stack([big] * 3, -1)
    return canvas


def group_photo() -> np.ndarray:
    """The astronaut and an LFW face side by side: two real people in one picture."""
    left = astronaut()
    other = lfw_face(0, 150)
    canvas = np.full((512, 512 + 300, 3), 200, np.uint8)
    canvas[:, :512] = left
    canvas[100:400, 512:812] = other
    return canvas


def speech(text: str, voice: str = "en") -> bytes:
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is missing: install Debian 'espeak-ng' (make system-deps)"
    return subprocess.run([espeak, "-v", voice, "--stdout", text], check=True, capture_output=True).stdout


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def music(seconds: float = 6.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = 0.3 * (np.sin(2 * np.pi * 130.8 * t) + np.sin(2 * np.pi * 196.0 * t))
    notes = [261.6, 329.6, 392.0, 523.3, 440.0, 349.2]
    for k in range(int(seconds / 0.5)):
        start = int(k * 0.5 * rate)
        end = min(t.size, start + int(0.6 * rate))
        local = t[start:end] - t[start]
        envelope = np.minimum(1, local * 50) * np.exp(-local * 1.5)
        pitch = notes[int(rng.integers(len(notes)))]
        for harmonic, amplitude in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.15)):
            out[start:end] += amplitude * envelope * np.sin(2 * np.pi * pitch * harmonic * local)
    return (0.2 * out / np.abs(out).max()).astype(np.float32)


def silence(seconds: float = 4.0, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)
