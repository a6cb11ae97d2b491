"""Errors for files we cannot or will not handle; all are clear 4xx conditions, never crashes."""

from __future__ import annotations

from synthgate.errors import InvalidInput


class MediaError(InvalidInput):
    code = "media.invalid"


class UnsupportedMedia(MediaError):
    status_code = 415
    code = "media.unsupported"


class CorruptMedia(MediaError):
    code = "media.corrupt"


class MediaTooLarge(MediaError):
    status_code = 413
    code = "media.too_large"


class DecompressionBomb(MediaTooLarge):
    """Small on disk, huge once decoded: refused before decoding."""

    code = "media.decompression_bomb"
