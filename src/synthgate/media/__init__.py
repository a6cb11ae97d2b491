"""media domain: sniffing by content, safe decoding with limits."""

from synthgate.media.errors import (
    CorruptMedia,
    DecompressionBomb,
    MediaError,
    MediaTooLarge,
    UnsupportedMedia,
)
from synthgate.media.item import MediaItem, Medium, medium_of
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits
from synthgate.media.sniff import sniff

__all__ = [
    "DEFAULT_LIMITS",
    "CorruptMedia",
    "DecompressionBomb",
    "MediaError",
    "MediaItem",
    "MediaLimits",
    "MediaTooLarge",
    "Medium",
    "UnsupportedMedia",
    "medium_of",
    "sniff",
]
