"""Digests of delivered content that survive in the wild: exact SHA-256, perceptual PDQ, and the
watermark payload that names a generation.

A file found later may have lost its metadata, been re-encoded or resized: its SHA-256 then no
longer matches, but the PDQ hash of its pixels (Meta's perceptual hash, distance ≤ 31 of 256 bits
for "the same picture") and the invisible watermark usually survive. These functions compute what
the generation record indexes and what a trace compares against.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from synthgate.media import MediaItem
from synthgate.moderation.hashbank import pdq_of_image

PDQ_MATCH_DISTANCE = 31
"""The PDQ authors' threshold for "same image" (of 256 bits)."""
VIDEO_FRAMES = 8
"""Frames hashed per video, evenly spread: a clip cut from the video still meets some of them."""
_WATERMARK_CONTEXT = b"synthgate/watermark-payload\x00"


def watermark_payload(produce_id: str) -> bytes:
    """The 64-bit watermark payload that stands for a generation.

    A produce id (128-bit ULID) does not fit the codec's 64 bits, so the payload is a keyed-free
    digest of it; the generation record indexes the payload, so a decoded payload finds its
    generation. Only the service's watermark key can embed or read the mark, so the payload itself
    needs no secret. Collisions need ~4 billion generations (birthday bound on 64 bits).
    """
    return hashlib.sha256(_WATERMARK_CONTEXT + produce_id.encode()).digest()[:8]


def _pdq_of_pil(image: Image.Image) -> str:
    return pdq_of_image(np.asarray(image.convert("RGB")))[0]


def image_pdq(data: bytes) -> str | None:
    """PDQ (64 hex digits) of an encoded image's first frame, or None when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _pdq_of_pil(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def video_pdqs(data: bytes, frames: int = VIDEO_FRAMES) -> list[str]:
    """PDQ of up to ``frames`` frames spread over a video (decoded with PyAV, no temporary files)."""
    import av

    hashes: list[str] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                return []
            stream = container.streams.video[0]
            total = stream.frames or 0
            if total <= 0:
                # No frame count in the header: hash the first ``frames`` decodable frames, 1 per second.
                rate = float(stream.average_rate or 25)
                step = max(1, round(rate))
            else:
                step = max(1, total // frames)
            for n, frame in enumerate(container.decode(stream)):
                if n % step == 0:
                    hashes.append(_pdq_of_pil(frame.to_image()))
                    if len(hashes) >= frames:
                        break
    except (av.FFmpegError, ValueError, OSError):
        return hashes
    return hashes


def pdqs_of(item: MediaItem) -> list[str]:
    """Perceptual hashes of one file: its image, or frames of its video; none for other media."""
    if item.medium == "image":
        found = image_pdq(item.data)
        return [found] if found else []
    if item.medium == "video":
        return video_pdqs(item.data)
    return []


def media_digests(items: Sequence[MediaItem], produce_id: str) -> dict[str, list[str]]:
    """Everything a generation indexes for its delivered files, by kind.

    ``sha256`` for each file, ``pdq`` for images and video frames, ``watermark`` the payload the
    watermark stage embeds (indexed whether or not a codec could carry it: the look-up only ever
    succeeds for a payload decoded with the service's key).
    """
    digests: dict[str, list[str]] = {"sha256": [], "pdq": [], "watermark": []}
    for item in items:
        _add(digests["sha256"], [item.sha256])
        _add(digests["pdq"], pdqs_of(item))
    if any(item.medium in ("image", "video", "audio") for item in items):
        digests["watermark"].append(watermark_payload(produce_id).hex())
    return {kind: values for kind, values in digests.items() if values}


def _add(target: list[str], values: Iterable[str]) -> None:
    for value in values:
        if value not in target:
            target.append(value)


def hamming_matches(
    query: Sequence[str], stored: Sequence[str], max_distance: int = PDQ_MATCH_DISTANCE
) -> list[tuple[int, int]]:
    """(position in ``stored``, best distance) of stored PDQ hashes within ``max_distance`` of any query.

    Vectorised XOR-popcount over 256-bit words; a trace compares one file against a chunk of the
    index at a time, so this stays linear and allocation-light.
    """
    if not query or not stored:
        return []
    q = np.frombuffer(bytes.fromhex("".join(query)), dtype=">u8").astype(np.uint64).reshape(-1, 4)
    s = np.frombuffer(bytes.fromhex("".join(stored)), dtype=">u8").astype(np.uint64).reshape(-1, 4)
    distances = np.bitwise_count(s[:, None, :] ^ q[None, :, :]).sum(axis=2).min(axis=1)
    hits = np.nonzero(distances <= max_distance)[0]
    return [(int(i), int(distances[i])) for i in hits]
