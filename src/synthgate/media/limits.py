"""Safe decoding: size, pixel and duration limits checked before any expensive decode.

A decompression bomb (a small file that declares a huge canvas or a very long stream) is refused
from its header; truncated or corrupt files become :class:`CorruptMedia`, never a crash.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from synthgate.media.errors import CorruptMedia, DecompressionBomb, MediaTooLarge


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 64_000_000
    """Total decoded pixels per image (all frames of an animation counted)."""
    max_duration_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Any) -> MediaLimits:
        default = cls()
        return cls(
            max_bytes=getattr(settings, "media_max_bytes", default.max_bytes),
            max_pixels=getattr(settings, "media_max_pixels", default.max_pixels),
            max_duration_seconds=getattr(
                settings, "media_max_duration_seconds", default.max_duration_seconds
            ),
        )

    def check_bytes(self, data: bytes) -> None:
        if len(data) > self.max_bytes:
            raise MediaTooLarge(f"the file is {len(data)} bytes; the limit is {self.max_bytes}")

    def check_pixels(self, width: int, height: int, frames: int = 1) -> None:
        total = width * height * max(frames, 1)
        if width <= 0 or height <= 0:
            raise CorruptMedia(f"the image declares an empty canvas ({width}x{height})")
        if total > self.max_pixels:
            raise DecompressionBomb(
                f"the image declares {width}x{height} pixels x {frames} frame(s) = {total}; "
                f"the limit is {self.max_pixels}"
            )

    def check_duration(self, seconds: float) -> None:
        if seconds > self.max_duration_seconds:
            raise DecompressionBomb(
                f"the stream lasts {seconds:.1f} s; the limit is {self.max_duration_seconds:.0f} s"
            )


DEFAULT_LIMITS = MediaLimits()


@contextmanager
def _pillow_errors() -> Iterator[None]:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBomb(f"the image is a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMedia(f"the image cannot be decoded: {exc}") from exc


def open_image(data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> Any:
    """Open (not yet decode) an image with Pillow after checking bytes and declared pixels."""
    from PIL import Image

    limits.check_bytes(data)
    with _pillow_errors():
        image = Image.open(BytesIO(data))
        limits.check_pixels(image.width, image.height, getattr(image, "n_frames", 1))
    return image


def decoded_frames(
    data: bytes, limits: MediaLimits = DEFAULT_LIMITS
) -> Iterator[tuple[str, tuple[int, int], bytes]]:
    """Every frame's (mode, size, raw pixels); raises on bombs and truncation."""
    from PIL import ImageSequence

    image = open_image(data, limits)
    with _pillow_errors():
        for frame in ImageSequence.Iterator(image):
            frame.load()
            yield frame.mode, frame.size, frame.tobytes()


def _av_open(data: bytes) -> Any:
    import av

    try:
        return av.open(BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise CorruptMedia(f"the stream cannot be opened: {exc}") from exc


def decoded_av(data: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> Iterator[tuple[str, bytes]]:
    """Decoded audio samples and video pixels, per stream, in decode order (PyAV)."""
    import av

    limits.check_bytes(data)
    container = _av_open(data)
    try:
        duration = (container.duration or 0) / 1_000_000
        limits.check_duration(duration)
        for stream in container.streams:
            if stream.type == "video":
                limits.check_pixels(stream.codec_context.width or 1, stream.codec_context.height or 1)
        streams = [s for s in container.streams if s.type in ("audio", "video")]
        if not streams:
            raise CorruptMedia("the file has no audio or video stream")
        decoded_seconds = 0.0
        try:
            for frame in container.decode(*streams):
                if frame.time is not None:
                    decoded_seconds = max(decoded_seconds, float(frame.time))
                    limits.check_duration(decoded_seconds)
                if isinstance(frame, av.VideoFrame):
                    limits.check_pixels(frame.width, frame.height)
                    yield "video", frame.to_ndarray().tobytes()
                else:
                    yield "audio", frame.to_ndarray().tobytes()
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"the stream cannot be decoded: {exc}") from exc
    finally:
        container.close()
