"""Explicit (visible / audible) labels per GB 45438 §5 for images, audio and video.

Each medium has a ``Labeler`` registered in ``labelers`` under its medium name; the labeling
service picks one by the sniffed medium, never by an if-chain, and third parties can add or
replace labelers through the ``synthgate.labelers`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

from synthgate.config import DEFAULT_LABEL_TEXT
from synthgate.errors import InvalidInput
from synthgate.labeling.text import check_label_wording
from synthgate.media import DEFAULT_LIMITS, MediaLimits, UnsupportedMedia
from synthgate.media.sniff import sniff
from synthgate.registry import Registry

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom"]
Style = Literal["plate", "outline"]
AudioCue = Literal["rhythm", "voice", "both"]
AudioPlacement = Literal["start", "end", "middle"]
VideoSpan = Literal["start", "start_end", "whole"]


@dataclass(frozen=True)
class ExplicitOptions:
    text: str = DEFAULT_LABEL_TEXT
    # GB 45438 5.2/5.4: the rendered glyphs are at least this share of the shortest side.
    min_height_ratio: float = 0.05
    # Below this many pixels a CJK glyph is unreadable; used when it still fits the width.
    min_height_px: int = 12
    position: Corner = "bottom-right"
    style: Style = "plate"
    plate_opacity: float = 0.75
    audio_cue: AudioCue = "rhythm"
    audio_placement: tuple[AudioPlacement, ...] = ("start",)
    video_span: VideoSpan = "start"
    # GB 45438 5.4: at least 2 s from the first frame.
    video_seconds: float = 2.0
    # Bombs are refused from the header (pixels over all frames, seconds) before decoding.
    limits: MediaLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        check_label_wording(self.text)
        if not 0.05 <= self.min_height_ratio <= 0.5:
            raise InvalidInput("min_height_ratio must be between 0.05 (GB 45438 5.2) and 0.5")
        if self.video_seconds < 2.0:
            raise InvalidInput("video label must be shown at least 2 s (GB 45438 5.4)")
        if not self.audio_placement:
            raise InvalidInput("audio label needs at least one placement (start, end or middle)")


class Labeler(Protocol):
    """Adds the explicit label to one medium; returns a file in the same container."""

    medium: str
    formats: frozenset[str]

    def apply(self, data: bytes, kind: str, options: ExplicitOptions) -> bytes:
        """``kind`` is the sniffed container (``synthgate.media.sniff``); raises ``MediaError``s."""
        ...


labelers: Registry[Labeler] = Registry("labelers")


def accept(data: bytes, formats: Collection[str], what: str, limits: MediaLimits) -> str:
    """The container of ``data`` by its content, if a labeler for ``what`` handles it, within limits.

    Labelers sniff again rather than trust the ``kind`` they are given: content decides, never a
    caller's claim, and the check is a few byte comparisons.
    """
    kind = sniff(data)
    if kind not in formats:
        raise UnsupportedMedia(f"not {what} this labeler handles ({', '.join(sorted(formats))})")
    limits.check_bytes(data)
    return kind


def labeler_for(medium: str) -> Labeler:
    from synthgate.labeling.explicit import audio, image, video  # noqa: F401  (registers built-ins)

    return labelers.create(medium)
