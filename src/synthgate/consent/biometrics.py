"""Faces and voices in media: detection and embeddings with models that ship in packages.

Faces: dlib's HOG frontal-face detector, its 5-point shape predictor and its ResNet face
recognition model (128-d descriptors; the model files come from ``face-recognition-models``).
Voices: WebRTC's voice activity detector finds speech; ``resemblyzer`` (a GE2E speaker encoder,
weights in its wheel, on the CPU build of torch) turns it into 256-d unit vectors.

Nothing is downloaded at run time. Models load once per process, on first use, under a lock.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog

from synthgate.media import MediaItem
from synthgate.media.errors import CorruptMedia
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits, open_image

log = structlog.get_logger("synthgate.consent")

FACE_DIM = 128
VOICE_DIM = 256
VOICE_RATE = 16_000

# Faces smaller than this (box side in pixels, in the analysed image) give descriptors that do not
# tell people apart reliably: dlib's model was trained on ~150 px chips. Such a face is reported,
# never matched.
MIN_FACE_PX = 40
# Images are analysed at most this large (longest side): detection cost grows with the area and a
# face that fills less than 40 px of 1024 is too small to match anyway.
ANALYSIS_SIDE = 1024
# HOG detector scores: candidates at or above SURE_SCORE are faces; those between DOUBTFUL_SCORE and
# SURE_SCORE are confirmed by the CNN detector on a crop (the astronaut photo's mission patch
# scores 0.12, her face 1.16).
SURE_SCORE = 0.5
DOUBTFUL_SCORE = -0.2
# Video frames are analysed smaller still: a clip has many frames, and a face under 64 px of a
# 1024-px-wide frame is reported as too small rather than matched anyway.
VIDEO_ANALYSIS_SIDE = 640
# Estimated JPEG quality below which faces are not matched (block artefacts move descriptors).
MIN_JPEG_QUALITY = 20
# Speech needed for a usable speaker embedding, and the window one embedding covers: a recording
# is cut into windows so that a second speaker does not hide behind the first one's average.
MIN_SPEECH_SECONDS = 1.5
VOICE_WINDOW_SECONDS = 3.0

# Standard IJG luminance quantisation table (quality 50), in zig-zag-independent natural order.
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


def _face_models_dir() -> Path:
    # find_spec locates the package without running its __init__, which imports pkg_resources.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face-recognition-models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]
    """left, top, right, bottom in the analysed image."""
    size: int
    """The shorter side of the box, in pixels."""
    embedding: np.ndarray | None
    """The 128-d descriptor; None when the face is too small to describe reliably."""
    frame: int = 0


@dataclass
class FaceScan:
    faces: list[Face] = field(default_factory=list)
    frames: int = 0
    jpeg_quality: int | None = None

    @property
    def usable(self) -> list[Face]:
        return [f for f in self.faces if f.embedding is not None]

    @property
    def tiny(self) -> list[Face]:
        return [f for f in self.faces if f.embedding is None]


@dataclass
class VoiceScan:
    duration: float
    speech_seconds: float
    embeddings: list[np.ndarray] = field(default_factory=list)
    music_like: bool = False

    @property
    def has_voice(self) -> bool:
        return bool(self.embeddings)


class _FaceModels:
    def __init__(self) -> None:
        import dlib  # type: ignore[import-untyped]

        folder = _face_models_dir()
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self.rectangle = dlib.rectangle
        # dlib's CNN (MMOD) detector: too slow for whole frames on a CPU, used to confirm the
        # HOG detector's doubtful candidates on a small crop around each.
        self.cnn = dlib.cnn_face_detection_model_v1(str(folder / "mmod_human_face_detector.dat"))
        # dlib's objects are not documented as thread-safe; one request at a time per process.
        self.lock = threading.Lock()


class _VoiceModels:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            # webrtcvad imports pkg_resources for its version string only.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # resemblyzer: scipy.ndimage.morphology
            import webrtcvad  # type: ignore[import-untyped]
            from resemblyzer import VoiceEncoder  # type: ignore[import-untyped]

        self.vad = webrtcvad.Vad(3)
        self.encoder = VoiceEncoder("cpu", verbose=False)
        self.lock = threading.Lock()


_models_lock = threading.Lock()


@cache
def face_models() -> _FaceModels:
    with _models_lock:
        return _FaceModels()


@cache
def voice_models() -> _VoiceModels:
    with _models_lock:
        return _VoiceModels()


# --- images and video frames --------------------------------------------------------------------


def jpeg_quality(image: Any) -> int | None:
    """The IJG quality a JPEG was saved at, estimated from its luminance quantisation table."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    table = np.asarray(tables[0], dtype=np.float64)
    if table.shape != (64,):
        return None
    # PIL gives the table in zig-zag order; compare sums, which the ordering does not change.
    scale = float(table.sum() / _IJG_LUMA.sum()) * 100.0
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return round(min(100.0, max(1.0, quality)))


def _fit(rgb: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return rgb
    from PIL import Image

    scale = side / longest
    resized = Image.fromarray(rgb).resize((max(1, round(width * scale)), max(1, round(height * scale))))
    return np.asarray(resized)


def _confirmed(rgb: np.ndarray, rect: Any) -> bool:
    """Ask the CNN detector whether a doubtful HOG candidate is a face (a crop twice its size)."""
    from PIL import Image

    models = face_models()
    height, width = rgb.shape[:2]
    pad = max(rect.width(), rect.height())
    left, top = max(0, rect.left() - pad // 2), max(0, rect.top() - pad // 2)
    right, bottom = min(width, rect.right() + pad // 2), min(height, rect.bottom() + pad // 2)
    crop = rgb[top:bottom, left:right]
    if crop.size == 0:
        return False
    # The MMOD model finds faces from ~80 px at no upsampling: scale the crop so the face is ~100 px.
    scale = 100.0 / max(1, pad)
    crop = np.asarray(
        Image.fromarray(crop).resize(
            (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        )
    )
    return len(models.cnn(np.ascontiguousarray(crop), 0)) > 0


def faces_in_rgb(rgb: np.ndarray, frame: int = 0, side: int = ANALYSIS_SIDE) -> list[Face]:
    """Faces in one RGB frame (uint8, H x W x 3), with descriptors for those large enough."""
    models = face_models()
    rgb = np.ascontiguousarray(_fit(rgb, side))
    with models.lock:
        # One upsampling finds faces down to ~40 px; small images get a second pass so tiny faces
        # are reported as tiny rather than missed.
        rects, scores, _ = models.detector.run(rgb, 1, DOUBTFUL_SCORE)
        if not rects and max(rgb.shape[:2]) <= 640:
            rects, scores, _ = models.detector.run(rgb, 2, DOUBTFUL_SCORE)
        rects = [
            r for r, score in zip(rects, scores, strict=True) if score >= SURE_SCORE or _confirmed(rgb, r)
        ]
        faces: list[Face] = []
        for rect in rects:
            size = min(rect.width(), rect.height())
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            if size < MIN_FACE_PX:
                faces.append(Face(box, size, None, frame))
                continue
            shape = models.shape(rgb, rect)
            descriptor = np.asarray(models.encoder.compute_face_descriptor(rgb, shape, 0), dtype=np.float32)
            faces.append(Face(box, size, descriptor, frame))
    return faces


def scan_image(data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> FaceScan:
    image = open_image(data, limits)
    quality = jpeg_quality(image) if image.format == "JPEG" else None
    frames: list[np.ndarray] = []
    try:
        n_frames = getattr(image, "n_frames", 1)
        # Animated images: a handful of frames spread over the animation.
        for index in sorted({round(i * (n_frames - 1) / 4) for i in range(5)} if n_frames > 1 else {0}):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptMedia(f"the image cannot be decoded: {exc}") from exc
    scan = FaceScan(frames=len(frames), jpeg_quality=quality)
    for index, rgb in enumerate(frames):
        scan.faces.extend(faces_in_rgb(rgb, index))
    return scan


def sample_video_frames(
    data: bytes, limits: MediaLimits = DEFAULT_LIMITS, fps: float = 1.0, max_frames: int = 60
) -> list[np.ndarray]:
    """RGB frames at ``fps`` (at most ``max_frames``, spread evenly over a longer video)."""
    import av

    limits.check_bytes(data)
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise CorruptMedia(f"the video cannot be opened: {exc}") from exc
    try:
        if not container.streams.video:
            raise CorruptMedia("the file has no video stream")
        stream = container.streams.video[0]
        limits.check_pixels(stream.codec_context.width or 1, stream.codec_context.height or 1)
        duration = (container.duration or 0) / 1_000_000
        limits.check_duration(duration)
        step = max(1.0 / fps, duration / max_frames if duration else 0.0)
        # Keyframes only where the decoder allows skipping; every frame is still decoded in order,
        # but only the sampled ones are converted to RGB (the costly part).
        frames: list[np.ndarray] = []
        next_time = 0.0
        for frame in container.decode(stream):
            time = float(frame.time) if frame.time is not None else next_time
            limits.check_duration(time)
            if time + 1e-6 < next_time:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            next_time = time + step
            if len(frames) >= max_frames:
                break
        return frames
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"the video cannot be decoded: {exc}") from exc
    finally:
        container.close()


def scan_video(
    data: bytes, limits: MediaLimits = DEFAULT_LIMITS, fps: float = 1.0, max_frames: int = 60
) -> FaceScan:
    frames = sample_video_frames(data, limits, fps, max_frames)
    scan = FaceScan(frames=len(frames))
    for index, rgb in enumerate(frames):
        scan.faces.extend(faces_in_rgb(rgb, index, VIDEO_ANALYSIS_SIDE))
    return scan


def distinct_people(faces: list[Face], threshold: float) -> list[list[Face]]:
    """Faces grouped into people: the same person seen in several frames counts once."""
    people: list[list[Face]] = []
    centroids: list[np.ndarray] = []
    for face in faces:
        if face.embedding is None:
            continue
        if centroids:
            distances = np.linalg.norm(np.stack(centroids) - face.embedding, axis=1)
            best = int(np.argmin(distances))
            if distances[best] < threshold:
                people[best].append(face)
                centroids[best] = np.mean(
                    np.stack([f.embedding for f in people[best] if f.embedding is not None]), axis=0
                )
                continue
        people.append([face])
        centroids.append(face.embedding)
    return people


# --- audio ---------------------------------------------------------------------------------------


def decode_audio(data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Mono float32 samples at 16 kHz from any container PyAV reads (WAV, MP3, FLAC, Ogg, MP4…)."""
    import av

    limits.check_bytes(data)
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise CorruptMedia(f"the audio cannot be opened: {exc}") from exc
    try:
        if not container.streams.audio:
            raise CorruptMedia("the file has no audio stream")
        limits.check_duration((container.duration or 0) / 1_000_000)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=VOICE_RATE)
        chunks: list[np.ndarray] = []
        total = 0
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
                limits.check_duration(total / VOICE_RATE)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"the audio cannot be decoded: {exc}") from exc
    finally:
        container.close()
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def _speech_mask(wav: np.ndarray) -> np.ndarray:
    """WebRTC VAD (most aggressive mode) per 30 ms frame, lightly smoothed."""
    models = voice_models()
    frame = VOICE_RATE * 30 // 1000
    count = wav.size // frame
    pcm = (np.clip(wav[: count * frame], -1.0, 1.0) * 32767).astype(np.int16)
    # Near-silence is not speech whatever the VAD thinks of the noise floor.
    rms = (
        np.sqrt(np.mean(pcm.reshape(count, frame).astype(np.float64) ** 2, axis=1)) if count else np.zeros(0)
    )
    with models.lock:
        flags = np.array(
            [
                models.vad.is_speech(pcm[i * frame : (i + 1) * frame].tobytes(), VOICE_RATE)
                for i in range(count)
            ],
            dtype=bool,
        )
    return flags & (rms > 100.0)


def music_likeness(wav: np.ndarray) -> float:
    """How steady the sound's loudness is (0 speech-like … 1 music-like).

    Speech alternates syllables and short pauses about four times a second, so a large share of its
    20 ms frames are well below the mean energy; sustained music rarely dips like that. This is the
    "low-energy frame" feature of Scheirer & Slaney (1997): the share of frames under half the mean
    RMS over a sliding one-second window, reported as 1 - share / 0.5, clipped.
    """
    hop = VOICE_RATE // 50
    count = wav.size // hop
    if count < 50:
        return 0.0
    rms = np.sqrt(np.mean(wav[: count * hop].reshape(count, hop).astype(np.float64) ** 2, axis=1))
    window = 50
    kernel = np.ones(window) / window
    local_mean = np.convolve(rms, kernel, mode="same")
    active = local_mean > 1e-3
    if not active.any():
        return 0.0
    low = (rms < 0.5 * local_mean) & active
    share = float(low.sum() / active.sum())
    return float(np.clip(1.0 - share / 0.5, 0.0, 1.0))


def scan_voice(wav: np.ndarray, *, music_threshold: float = 0.75) -> VoiceScan:
    """Speech found in ``wav`` (16 kHz mono) and one speaker embedding per window of speech."""
    duration = wav.size / VOICE_RATE
    mask = _speech_mask(wav)
    frame = VOICE_RATE * 30 // 1000
    speech = wav[: mask.size * frame].reshape(-1, frame)[mask].reshape(-1) if mask.any() else wav[:0]
    scan = VoiceScan(duration=duration, speech_seconds=speech.size / VOICE_RATE)
    if scan.speech_seconds < MIN_SPEECH_SECONDS:
        return scan
    scan.music_like = music_likeness(wav) >= music_threshold
    if scan.music_like:
        return scan
    models = voice_models()
    from resemblyzer.audio import normalize_volume  # type: ignore[import-untyped]

    speech = normalize_volume(speech, -30, increase_only=True).astype(np.float32)
    window = int(VOICE_WINDOW_SECONDS * VOICE_RATE)
    # Windows of ~3 s of speech; a short tail joins the window before it.
    starts = list(range(0, max(1, speech.size - window // 2), window)) or [0]
    pieces = [speech[s : s + window] for s in starts]
    if len(pieces) > 1 and pieces[-1].size < window // 2:
        pieces[-2] = np.concatenate([pieces[-2], pieces.pop()])
    with models.lock:
        for piece in pieces:
            if piece.size >= MIN_SPEECH_SECONDS * VOICE_RATE / 2:
                scan.embeddings.append(np.asarray(models.encoder.embed_utterance(piece), dtype=np.float32))
    return scan


MediaKind = Literal["face", "voice"]


def scan_media_faces(
    item: MediaItem, limits: MediaLimits, fps: float = 1.0, max_frames: int = 60
) -> FaceScan:
    if item.medium == "image":
        return scan_image(item.data, limits)
    if item.medium == "video":
        return scan_video(item.data, limits, fps, max_frames)
    return FaceScan()


def audio_of(item: MediaItem, limits: MediaLimits) -> np.ndarray | None:
    """The sound of an audio file, or of a video's audio track (None when a video has none)."""
    if item.medium == "audio":
        return decode_audio(item.data, limits)
    if item.medium == "video":
        try:
            return decode_audio(item.data, limits)
        except CorruptMedia:
            return None
    return None
