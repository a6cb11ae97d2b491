"""Consent gate (DSP-14): detector and embedding costs, matching at 100,000 templates, and the
false-accept / false-reject rates behind the thresholds.

Timings (median of a few runs, one process, CPU):
- face detection + descriptors on a 1024×1024 photo (the astronaut enlarged);
- the same per 10 s of 1280×720 H.264 video (sampled at ``consent_video_fps``, 1 frame/s);
- speaker embedding per 10 s of espeak-ng speech (VAD + resemblyzer);
- one probe against 100,000 enrolled face templates through ``KindIndex.best`` (one BLAS
  matrix-vector product over a decrypted in-memory matrix), against the peer: the
  ``face_recognition`` package's ``face_distance``, which is ``np.linalg.norm(known - probe, axis=1)``;
- building that matrix from 100,000 AES-GCM-encrypted templates (a worker's cold start or a
  rebuild after a consent change).

Calibration (``--calibrate``): faces — genuine pairs are the astronaut photo against 22 altered
copies (JPEG 25–90, scale 0.6–2×, rotation ±10°, mirror, brightness, contrast, grey, blur, noise,
crop); impostor pairs are the 97 detectable faces of scikit-image's LFW subset against each other
and against the astronaut. Voices — 12 espeak-ng voices (en with variants m1–m7, f1–f5) stand for
12 speakers, each reading 3 sentences; genuine pairs are the same voice on different sentences,
impostor pairs different voices.

Run::

    .venv/bin/python bench/consent.py              # timings + calibration, writes docs/performance.md
    .venv/bin/python bench/consent.py --no-docs --skip-calibration
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from synthgate.config import Settings
from synthgate.consent import biometrics
from synthgate.consent.matcher import KindIndex, decode_vector, encode_vector
from synthgate.keys import KeyStore

DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN = "<!-- bench/consent.py: begin -->"
END = "<!-- bench/consent.py: end -->"
LFW = Path(__import__("skimage").__file__).parent / "data" / "lfw_subset.npy"

SENTENCES = (
    "I agree that my voice may be used by this service for the purpose I chose, and only for it.",
    "Please read the weather forecast for tomorrow morning, with light rain in the north.",
    "The quick brown fox jumps over the lazy dog while the children watch from the window.",
)
VOICES = (
    "en+m1",
    "en+m2",
    "en+m3",
    "en+m4",
    "en+m5",
    "en+m6",
    "en+m7",
    "en+f1",
    "en+f2",
    "en+f3",
    "en+f4",
    "en+f5",
)


def timed(work: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


def speech(text: str, voice: str) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if not espeak:
        sys.exit("espeak-ng is missing (make system-deps)")
    wav = subprocess.run([espeak, "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    return biometrics.decode_audio(wav)


def video_720p(seconds: float = 10.0, fps: int = 25) -> bytes:
    """The astronaut drifting across a 1280×720 frame, H.264 in MP4 (PyAV)."""
    import av

    face = np.asarray(Image.fromarray(astronaut()).resize((400, 400)))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for index in range(int(seconds * fps)):
            frame = np.full((720, 1280, 3), 90, np.uint8)
            x = 100 + (index * 3) % 700
            frame[160:560, x : x + 400] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def timings(n_templates: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    big = np.asarray(Image.fromarray(astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC))
    png = io.BytesIO()
    Image.fromarray(big).save(png, "PNG")
    biometrics.faces_in_rgb(big)  # load the models
    seconds = timed(lambda: biometrics.scan_image(png.getvalue()))
    rows.append(("face detection + descriptor, 1024×1024 image (1 face)", f"{seconds * 1000:.0f} ms", "—"))
    video = video_720p()
    seconds = timed(lambda: biometrics.scan_video(video), runs=1)
    frames = biometrics.scan_video(video).frames
    rows.append((f"faces in 10 s of 720p H.264 video ({frames} sampled frames)", f"{seconds:.2f} s", "—"))
    long_speech = np.concatenate([speech(s, "en+f3") for s in SENTENCES * 2])[: 10 * biometrics.VOICE_RATE]
    biometrics.scan_voice(long_speech[: 3 * biometrics.VOICE_RATE])  # load the model
    seconds = timed(lambda: biometrics.scan_voice(long_speech))
    windows = len(biometrics.scan_voice(long_speech).embeddings)
    rows.append(
        (f"VAD + speaker embeddings, 10 s of speech ({windows} windows)", f"{seconds * 1000:.0f} ms", "—")
    )

    rng = np.random.default_rng(7)
    # Descriptors live in a ball of radius ~1; spread random ones like real ones (norm ≈ 0.9).
    matrix = rng.normal(0, 0.08, (n_templates, biometrics.FACE_DIM)).astype(np.float32)
    ops = ["face.swap"]
    far_future = time.time() + 10**7
    index = KindIndex.build(
        "face", [(f"t{i}", f"c{i}", matrix[i], far_future, ops) for i in range(n_templates)]
    )
    probes = [matrix[rng.integers(n_templates)] + rng.normal(0, 0.01, biometrics.FACE_DIM).astype(np.float32)
              for _ in range(200)]  # fmt: skip
    started = time.perf_counter()
    for probe in probes:
        index.best(probe, "face.swap")
    ours = (time.perf_counter() - started) / len(probes)
    started = time.perf_counter()
    for probe in probes:
        distances = np.linalg.norm(matrix - probe, axis=1)  # face_recognition.face_distance
        int(np.argmin(distances))
    peer = (time.perf_counter() - started) / len(probes)
    rows.append(
        (
            f"match 1 probe against {n_templates:,} face templates",
            f"{ours * 1000:.2f} ms",
            f"{peer * 1000:.2f} ms (face_recognition's face_distance)",
        )
    )

    if not os.environ.get("SYNTHGATE_MASTER_KEY"):  # a throw-away key; nothing is written to disk
        import base64

        os.environ["SYNTHGATE_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    keys = KeyStore(Settings(data_dir=Path("/nonexistent")))
    tokens = [encode_vector(keys, matrix[i], "face") for i in range(n_templates)]
    started = time.perf_counter()
    decoded = [decode_vector(keys, token, "face") for token in tokens]
    built = KindIndex.build("face", [(f"t{i}", f"c{i}", v, far_future, ops) for i, v in enumerate(decoded)])
    rows.append(
        (
            f"decrypt + build the matrix of {n_templates:,} templates",
            f"{time.perf_counter() - started:.2f} s",
            "—",
        )
    )
    # What a worker does after one consent changed: drop a revoked one, add a new one.
    new_row = (f"t{n_templates}", f"c{n_templates}", matrix[0], far_future, ops)
    seconds = timed(lambda: built.changed({"c5"}, [new_row]))
    rows.append(
        (
            f"apply one change (1 revoked, 1 added) to {n_templates:,} templates",
            f"{seconds * 1000:.0f} ms",
            "—",
        )
    )
    return rows


def rates(
    genuine: np.ndarray, impostor: np.ndarray, thresholds: list[float]
) -> list[tuple[float, float, float]]:
    return [(t, float((impostor < t).mean()), float((genuine >= t).mean())) for t in thresholds]


def calibrate_faces() -> tuple[list[tuple[float, float, float]], int, int]:
    rgb = astronaut()
    reference = biometrics.faces_in_rgb(rgb)[0].embedding
    assert reference is not None
    image = Image.fromarray(rgb)
    variants: list[Image.Image] = []
    for quality in (90, 60, 40, 25):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        variants.append(Image.open(io.BytesIO(buffer.getvalue())))
    variants += [image.resize((int(512 * s), int(512 * s))) for s in (0.6, 0.8, 1.5, 2.0)]
    variants += [image.rotate(a, resample=Image.Resampling.BICUBIC) for a in (-10, -5, 5, 10)]
    variants += [
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        image.convert("L"),
        image.crop((100, 0, 400, 300)),
    ]
    variants += [ImageEnhance.Brightness(image).enhance(k) for k in (0.6, 1.4)]
    variants += [ImageEnhance.Contrast(image).enhance(k) for k in (0.6, 1.5)]
    variants += [image.filter(ImageFilter.GaussianBlur(r)) for r in (1, 2)]
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    variants.append(Image.fromarray(noisy))
    genuine = []
    for variant in variants:
        faces = [
            f for f in biometrics.faces_in_rgb(np.asarray(variant.convert("RGB"))) if f.embedding is not None
        ]
        # A copy in which no face is found is a false reject too (distance +inf).
        genuine.append(float(np.linalg.norm(faces[0].embedding - reference)) if faces else float("inf"))
    embeddings = [reference]
    for face in np.load(LFW)[:100]:
        small = (face * 255).astype(np.uint8)
        big = np.stack(
            [np.asarray(Image.fromarray(small).resize((100, 100), Image.Resampling.BICUBIC))] * 3, -1
        )
        canvas = np.full((200, 200, 3), 128, np.uint8)
        canvas[50:150, 50:150] = big
        found = [f for f in biometrics.faces_in_rgb(canvas) if f.embedding is not None]
        if found:
            embeddings.append(found[0].embedding)
    stacked = np.stack(embeddings)
    distances = np.linalg.norm(stacked[:, None] - stacked[None], axis=2)
    impostor = distances[np.triu_indices(len(stacked), 1)]
    thresholds = [0.35, 0.40, 0.45, 0.50, 0.55, 0.60]
    return rates(np.array(genuine), impostor, thresholds), len(genuine), len(impostor)


def calibrate_voices() -> tuple[list[tuple[float, float, float]], int, int]:
    embeddings: list[tuple[str, np.ndarray]] = []
    for voice in VOICES:
        for sentence in SENTENCES:
            scan = biometrics.scan_voice(speech(sentence, voice))
            for vector in scan.embeddings[:1]:
                embeddings.append((voice, vector))
    genuine, impostor = [], []
    for i in range(len(embeddings)):
        for j in range(i + 1, len(embeddings)):
            distance = 1.0 - float(embeddings[i][1] @ embeddings[j][1])
            (genuine if embeddings[i][0] == embeddings[j][0] else impostor).append(distance)
    thresholds = [0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20]
    return rates(np.array(genuine), np.array(impostor), thresholds), len(genuine), len(impostor)


def render(rows: list[tuple[str, str, str]], faces: object, voices: object) -> str:
    settings = Settings()
    lines = [
        BEGIN,
        "",
        f"CPU: {os.cpu_count()} cores shared; dlib {__import__('dlib').__version__}, torch "
        f"{__import__('torch').__version__} (CPU build).",
        "",
        "| measurement | synthgate | peer |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    for title, data, unit, current in (
        (
            "Faces (Euclidean distance between dlib descriptors)",
            faces,
            "distance <",
            settings.consent_face_threshold,
        ),
        (
            "Voices (cosine distance between resemblyzer embeddings)",
            voices,
            "distance <",
            settings.consent_voice_threshold,
        ),
    ):
        if data is None:
            continue
        table, n_genuine, n_impostor = data  # type: ignore[misc]
        lines += [
            f"{title}: {n_genuine} genuine pairs, {n_impostor} impostor pairs.",
            "",
            "| accept when | false-accept rate | false-reject rate |",
            "|---|---|---|",
            *[
                f"| {unit} {t:.2f}{' (default)' if abs(t - current) < 1e-9 else ''} | {far:.2%} | {frr:.2%} |"
                for t, far, frr in table
            ],
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=100_000, help="enrolled templates for the matching benchmark"
    )
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    rows = timings(args.n)
    faces = voices = None
    if not args.skip_calibration:
        faces = calibrate_faces()
        voices = calibrate_voices()
    text = render(rows, faces, voices)
    print(text)
    if not args.no_docs and DOCS.exists():
        current = DOCS.read_text(encoding="utf-8")
        if BEGIN in current and END in current:
            head, rest = current.split(BEGIN, 1)
            updated = head + text + rest.split(END, 1)[1]
        else:
            updated = current.rstrip("\n") + "\n\n" + text + "\n"
        DOCS.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
