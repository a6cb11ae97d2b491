"""Media detectors: NSFW (nudenet's ONNX model), text in images (rapidocr's ONNX models, the text
then screened like any text) and known content (the named SHA-256 / PDQ hash banks).

Each file is decoded once, under the media limits, into a few RGB frames (the first frame of a
still image; up to ``MAX_FRAMES`` evenly spaced frames of an animation or a video); every detector
works on those frames. A file that cannot be decoded yields an ``undecodable`` finding, which the
policy decides on (the default policy blocks it): nothing is delivered unscreened.

The models ship inside their wheels and load once per process, lazily, behind a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from synthgate.media import MediaItem
from synthgate.media.errors import MediaError
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits, open_image
from synthgate.moderation.findings import Finding
from synthgate.moderation.hashbank import HashBank, pdq_of_image

Frame = npt.NDArray[np.uint8]
"""An RGB image, height × width × 3."""

MAX_FRAMES = 8
"""Frames sampled from an animation or a video: enough to catch a scene, bounded in CPU."""


class TextScanner(Protocol):
    def scan(self, text: str) -> list[Finding]: ...


@dataclass
class MediaScan:
    """What a media detector gets besides the frames: the request's text screener (for text found
    in images) and the hash banks the service enabled."""

    screener: TextScanner
    bank: HashBank
    banks: frozenset[str] | None


class MediaDetector(Protocol):
    name: str
    version: str
    media: frozenset[str]
    """Which media the detector looks at (``image``, ``video``, ``audio``)."""

    def scan_media(self, item: MediaItem, frames: list[Frame], scan: MediaScan) -> list[Finding]: ...


# --- decoding -------------------------------------------------------------------------------------


class Undecodable(Exception):
    pass


def _sample(count: int, limit: int) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def decode_frames(item: MediaItem, limits: MediaLimits = DEFAULT_LIMITS) -> list[Frame]:
    """The RGB frames the detectors see; :class:`Undecodable` when the file cannot be read."""
    try:
        if item.medium == "image":
            return _image_frames(item.data, limits)
        if item.medium == "video":
            return _video_frames(item.data, limits)
    except MediaError as exc:
        raise Undecodable(exc.message if hasattr(exc, "message") else str(exc)) from exc
    except Exception as exc:  # a decoder library's own error: the file is not what it claims
        raise Undecodable(f"{type(exc).__name__}: {exc}") from exc
    return []


def _image_frames(data: bytes, limits: MediaLimits) -> list[Frame]:
    from PIL import ImageSequence

    image = open_image(data, limits)
    count = getattr(image, "n_frames", 1)
    wanted = set(_sample(count, MAX_FRAMES))
    frames = []
    for index, frame in enumerate(ImageSequence.Iterator(image)):
        if index in wanted:
            frames.append(np.asarray(frame.convert("RGB"), dtype=np.uint8))
        if index >= max(wanted):
            break
    if not frames:
        raise Undecodable("the image has no frames")
    return frames


def _video_frames(data: bytes, limits: MediaLimits) -> list[Frame]:
    import av

    limits.check_bytes(data)
    with av.open(BytesIO(data), mode="r") as container:
        if not container.streams.video:
            raise Undecodable("the video has no video stream")
        stream = container.streams.video[0]
        limits.check_pixels(stream.codec_context.width or 1, stream.codec_context.height or 1)
        duration = float(container.duration or 0) / 1_000_000
        limits.check_duration(duration)
        total = stream.frames or 0
        frames: list[Frame] = []
        if total:
            wanted = set(_sample(total, MAX_FRAMES))
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
                if index >= max(wanted):
                    break
        else:  # no frame count in the header: keep a bounded, evenly thinned reservoir
            kept: list[Frame] = []
            step = 1
            for index, frame in enumerate(container.decode(stream)):
                if index % step == 0:
                    kept.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
                    if len(kept) >= 2 * MAX_FRAMES:
                        kept = kept[::2]
                        step *= 2
            frames = [kept[i] for i in _sample(len(kept), MAX_FRAMES)] if kept else []
    if not frames:
        raise Undecodable("the video has no decodable frames")
    return frames


# --- shared model loading ---------------------------------------------------------------------------


class _Lazy:
    """One model per process, loaded on first use; calls are serialised (the CPU is the limit)."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._model: Any = None
        self.lock = threading.Lock()

    def get(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model


def _load_nudenet() -> Any:
    from nudenet import NudeDetector  # type: ignore[import-untyped]

    return NudeDetector()


def _load_rapidocr() -> Any:
    from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

    # The packaged default scales the short side *up* to 736 px, which costs seconds per picture;
    # bounding the long side keeps screen text readable at a fraction of the cost.
    return RapidOCR(det_limit_type="max", det_limit_side_len=960, print_verbose=False)


_NUDENET = _Lazy(_load_nudenet)
_RAPIDOCR = _Lazy(_load_rapidocr)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


# --- NSFW -------------------------------------------------------------------------------------------

NSFW_CATEGORY = "A.1.6"
EXPOSED_CLASSES = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
"""nudenet's classes that make an image explicit; the covered and face classes do not."""


NSFW_MIN_SCORE = 0.4
"""nudenet reports boxes from 0.2; below 0.4 its boxes are mostly noise on ordinary photos (a
coffee cup in scikit-image's ``coffee`` scores 0.30 as exposed buttocks)."""


def nsfw_findings(
    detections: list[dict[str, Any]], frame_index: int = 0, min_score: float = NSFW_MIN_SCORE
) -> list[Finding]:
    """Findings from nudenet's detections (``{"class", "score", "box": [x, y, w, h]}``): one per
    exposed class at or above ``min_score``, scored by its most confident box."""
    best: dict[str, dict[str, Any]] = {}
    for detection in detections:
        label = str(detection.get("class", ""))
        if float(detection["score"]) < min_score:
            continue
        if label in EXPOSED_CLASSES and float(detection["score"]) > float(
            best.get(label, {"score": -1.0})["score"]
        ):
            best[label] = detection
    return [
        Finding(
            detector="nsfw",
            category=NSFW_CATEGORY,
            score=round(float(d["score"]), 4),
            evidence=f"frame {frame_index}: {label} at {list(d['box'])}",
            rule=f"nudenet.{label}",
            variant="nsfw",
        )
        for label, d in sorted(best.items())
    ]


class NsfwDetector:
    name = "nsfw"
    media = frozenset({"image", "video"})

    def __init__(self, *, min_score: float = NSFW_MIN_SCORE, **_: Any) -> None:
        self.min_score = float(min_score)
        self.version = f"nudenet-{_package_version('nudenet')}/320n@{self.min_score:g}"

    def detect(self, frame: Frame) -> list[dict[str, Any]]:
        """nudenet's raw detections for one RGB frame."""
        # nudenet converts RGBA → BGR itself, then swaps to RGB for the network.
        rgba = np.dstack([frame, np.full(frame.shape[:2], 255, dtype=np.uint8)])
        with _NUDENET.lock:
            result: list[dict[str, Any]] = _NUDENET.get().detect(np.ascontiguousarray(rgba))
        return result

    def scan_media(self, item: MediaItem, frames: list[Frame], scan: MediaScan) -> list[Finding]:
        findings: list[Finding] = []
        for index, frame in enumerate(frames):
            findings.extend(nsfw_findings(self.detect(frame), index, self.min_score))
        return findings


# --- text in images -----------------------------------------------------------------------------------


class OcrDetector:
    """Reads text in pictures and video frames, then screens it with the request's text detectors."""

    name = "ocr"
    media = frozenset({"image", "video"})
    MIN_CONFIDENCE = 0.5

    def __init__(self, **_: Any) -> None:
        self.version = f"rapidocr-onnxruntime-{_package_version('rapidocr-onnxruntime')}/PP-OCRv4"

    def read(self, frame: Frame) -> list[str]:
        """The lines of text in one RGB frame, top to bottom."""
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        with _RAPIDOCR.lock:
            result, _ = _RAPIDOCR.get()(bgr)
        lines = [(box, text, score) for box, text, score in (result or []) if score >= self.MIN_CONFIDENCE]
        lines.sort(key=lambda line: (line[0][0][1], line[0][0][0]))
        return [str(text) for _, text, _ in lines]

    def scan_media(self, item: MediaItem, frames: list[Frame], scan: MediaScan) -> list[Finding]:
        findings: list[Finding] = []
        seen: set[str] = set()
        for index, frame in enumerate(frames):
            text = "\n".join(self.read(frame))
            if not text or text in seen:  # a still caption over many video frames is read once
                continue
            seen.add(text)
            for f in scan.screener.scan(text):
                findings.append(
                    Finding(
                        detector=self.name,
                        category=f.category,
                        score=f.score,
                        span=None,
                        evidence=f"frame {index}, text in image: {f.evidence}",
                        rule=f.rule,
                        variant=f"ocr+{f.detector}:{f.variant}",
                    )
                )
        return findings


# --- known content ----------------------------------------------------------------------------------


class HashBankDetector:
    """SHA-256 of the file in every medium; PDQ of each sampled frame for images and video."""

    name = "hash-bank"
    media = frozenset({"image", "video", "audio"})

    def __init__(self, **_: Any) -> None:
        self.version = "pdq+sha256"

    def scan_media(self, item: MediaItem, frames: list[Frame], scan: MediaScan) -> list[Finding]:
        self.version = f"library-{scan.bank.version}"
        pdqs = [pdq_of_image(frame)[0] for frame in frames]
        return scan.bank.scan_hashes(item.sha256, pdqs, scan.banks)
