"""Invisible, keyed watermarks that tie a file to its generation record (LM-5, DSP-18).

``codecs`` is the plug-in registry (``synthgate.watermark_codec`` entry points); the built-in
``image`` codec is described in :mod:`synthgate.labeling.watermark.image`. The pipeline calls
:func:`watermark_image_bytes`, which never hands back an unmarked file as marked: media that cannot
carry the payload comes back with ``embedded=False`` and the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from synthgate.errors import InvalidInput
from synthgate.labeling.watermark import audio as _audio
from synthgate.labeling.watermark import image as _image
from synthgate.labeling.watermark.base import (
    DEFAULT_MAX_P_VALUE,
    PAYLOAD_BYTES,
    Detection,
    NotEmbeddable,
    WatermarkCodec,
    codecs,
    parse_payload,
    union_bound_p_value,
)
from synthgate.media import MediaItem

__all__ = [
    "DEFAULT_MAX_P_VALUE",
    "PAYLOAD_BYTES",
    "Detection",
    "EmbedResult",
    "NotEmbeddable",
    "WatermarkCodec",
    "WatermarkRecord",
    "codecs",
    "detect_any",
    "detect_image_bytes",
    "embed_for_output",
    "parse_payload",
    "union_bound_p_value",
    "watermark_image_bytes",
]

_LOSSLESS_FORMATS = {"PNG", "TIFF", "BMP", "WEBP"}


@dataclass
class EmbedResult:
    embedded: bool
    data: bytes  # the marked file, or the input unchanged when not embedded
    format: str | None
    reason: str | None = None


def _open(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInput(f"not a readable image: {exc}") from exc
    return img


def watermark_image_bytes(
    data: bytes, key: bytes, payload: bytes, *, output_format: str | None = None
) -> EmbedResult:
    """Embed ``payload`` into an encoded image; the output keeps the input's format unless told otherwise.

    JPEG output is written at quality 95 (the mark survives far worse, the point is not to add loss);
    PNG/TIFF/BMP/WebP are written losslessly.
    """
    img = _open(data)
    fmt = (output_format or img.format or "PNG").upper()
    codec = codecs.create("image", key)
    try:
        marked = codec.embed(img, payload)
    except NotEmbeddable as exc:
        return EmbedResult(False, data, fmt, exc.message)
    if fmt in ("JPEG", "JPG") and marked.mode not in ("RGB", "L"):
        marked = marked.convert("RGB")
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in ("JPEG", "JPG"):
        fmt, options = "JPEG", {"quality": 95, "subsampling": 0}
    elif fmt == "WEBP":
        options = {"lossless": True}
    elif fmt not in _LOSSLESS_FORMATS:
        fmt = "PNG"
    marked.save(buffer, fmt, **options)
    return EmbedResult(True, buffer.getvalue(), fmt)


def detect_image_bytes(data: bytes, key: bytes, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection:
    return codecs.create("image", key).detect(_open(data), max_p_value=max_p_value)


# --- the pipeline's entry points (media_label stage) --------------------------------------------------

_IMAGE_CONTAINERS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
_AUDIO_CONTAINERS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
_VIDEO_CONTAINERS = {"mp4", "mov", "mkv"}


@dataclass
class WatermarkRecord:
    """What happened to one output: recorded on the generation, never "marked" unless it is."""

    embedded: bool
    medium: str
    container: str
    codec: str | None
    payload: str | None  # 16 hex digits when embedded
    reason: str | None = None  # why not, when not embedded

    def as_dict(self) -> dict[str, object]:
        return {
            "embedded": self.embedded,
            "medium": self.medium,
            "container": self.container,
            "codec": self.codec,
            "payload": self.payload,
            "reason": self.reason,
        }


def _read_audio(data: bytes) -> tuple[_audio.Audio, dict[str, str | None]]:
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidInput(f"not a readable audio file: {exc}") from exc
    return _audio.Audio(samples, int(rate)), {"format": info.format, "subtype": info.subtype}


def _write_audio(audio: _audio.Audio, fmt: str, subtype: str | None) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio.samples, audio.rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def embed_for_output(item: MediaItem, payload: bytes, key: bytes) -> tuple[MediaItem, WatermarkRecord]:
    """Mark one delivered output with ``payload`` under the service's ``key`` (``KeyStore.watermark_key``).

    Returns the item to deliver and the record to keep on the generation. Media that cannot carry the
    mark (too small, silent, too short, a container without a codec here) comes back unchanged with
    ``embedded=False`` and the reason: the caller records that, it never reports it as marked.
    Unreadable bytes raise :class:`InvalidInput`.
    """
    medium, container = item.medium, item.container

    def refused(reason: str, codec: str | None = None) -> tuple[MediaItem, WatermarkRecord]:
        return item, WatermarkRecord(False, medium, container, codec, None, reason)

    if medium == "image":
        if container not in _IMAGE_CONTAINERS:
            return refused(f"{container} images cannot carry the invisible watermark (palette/animation)")
        result = watermark_image_bytes(item.data, key, payload, output_format=_IMAGE_CONTAINERS[container])
        if not result.embedded:
            return refused(result.reason or "not embeddable", _image.ImageCodec.name)
        return item.replace_data(result.data), WatermarkRecord(
            True, medium, container, _image.ImageCodec.name, payload.hex()
        )
    if medium == "audio":
        if container not in _AUDIO_CONTAINERS:
            return refused(f"{container} audio is not supported by the audio watermark")
        audio, info = _read_audio(item.data)
        try:
            marked = codecs.create("audio", key).embed(audio, payload)
        except NotEmbeddable as exc:
            return refused(exc.message, _audio.AudioCodec.name)
        subtype = info["subtype"] if info["subtype"] not in ("PCM_U8",) else "PCM_16"
        data = _write_audio(marked, _AUDIO_CONTAINERS[container], subtype)
        return item.replace_data(data), WatermarkRecord(
            True, medium, container, _audio.AudioCodec.name, payload.hex()
        )
    if medium == "video":
        from synthgate.labeling.watermark import video as _video

        if container not in _VIDEO_CONTAINERS:
            return refused(f"{container} video is not supported by the video watermark")
        try:
            data = _video.embed_video(item.data, container, key, payload)
        except NotEmbeddable as exc:
            return refused(exc.message, _image.ImageCodec.name)
        return item.replace_data(data), WatermarkRecord(
            True, medium, container, "video-" + _image.ImageCodec.name, payload.hex()
        )
    return refused(f"{medium} outputs carry no media watermark (text: see watermark.text)")


def detect_any(item: MediaItem, key: bytes, *, max_p_value: float = DEFAULT_MAX_P_VALUE) -> Detection:
    """Look for the ``key``'s watermark in an image, audio or video item (never raises on unmarked media)."""
    if item.medium == "image":
        return detect_image_bytes(item.data, key, max_p_value=max_p_value)
    if item.medium == "audio":
        audio, _ = _read_audio(item.data)
        return codecs.create("audio", key).detect(audio, max_p_value=max_p_value)
    if item.medium == "video":
        from synthgate.labeling.watermark import video as _video

        return _video.detect_video(item.data, key, max_p_value=max_p_value)
    return Detection(
        False, None, 1.0, 0.0, "none", details={"reason": f"no media watermark for {item.medium}"}
    )
