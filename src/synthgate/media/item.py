"""One piece of media travelling through the pipeline: its bytes, what they are, and what for."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from synthgate.media.errors import UnsupportedMedia
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits
from synthgate.media.sniff import AUDIO_KINDS, IMAGE_KINDS, TEXT_KINDS, VIDEO_KINDS, sniff

Medium = Literal["image", "audio", "video", "text"]


def medium_of(container: str) -> Medium:
    if container in IMAGE_KINDS:
        return "image"
    if container in AUDIO_KINDS:
        return "audio"
    if container in VIDEO_KINDS:
        return "video"
    if container in TEXT_KINDS or container == "docx":
        return "text"
    raise UnsupportedMedia(f"{container} files are not media the gateway handles")


@dataclass(frozen=True)
class MediaItem:
    """Bytes whose container was sniffed from the content itself, never from a name or a claim.

    ``role`` says what the item is to the request: ``input`` by default; ``source``, ``target`` or
    ``reference`` for edits (a face swap has a source face and a target picture).
    """

    data: bytes = field(repr=False)
    container: str
    medium: Medium
    role: str = "input"

    @classmethod
    def from_bytes(
        cls, data: bytes, *, role: str = "input", limits: MediaLimits = DEFAULT_LIMITS
    ) -> MediaItem:
        limits.check_bytes(data)
        container = sniff(data)
        return cls(data=data, container=container, medium=medium_of(container), role=role)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def replace_data(self, data: bytes) -> MediaItem:
        """The same item with new bytes of the same container (a labeler's output)."""
        return MediaItem(data=data, container=self.container, medium=self.medium, role=self.role)
