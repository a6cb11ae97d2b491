"""media domain: sniffing by content, safe decoding with limits."""

from synthgate.media.errors import (
    CorruptMedia,
    DecompressionBomb,
    MediaError,
    MediaTooLarge,
    UnsupportedMedia,
)
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits
from synthgate.media.sniff import sniff

__all__ = [
    "DEFAULT_LIMITS",
    "CorruptMedia",
    "DecompressionBomb",
    "MediaError",
    "MediaLimits",
    "MediaTooLarge",
    "UnsupportedMedia",
    "sniff",
]
