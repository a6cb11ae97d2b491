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
from synthgate.labeling.watermark import image as _image  # noqa: F401 - registers the image codec
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

__all__ = [
    "DEFAULT_MAX_P_VALUE",
    "PAYLOAD_BYTES",
    "Detection",
    "EmbedResult",
    "NotEmbeddable",
    "WatermarkCodec",
    "codecs",
    "detect_image_bytes",
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
