"""Video watermark: the image codec on every frame, detected on the temporal mean of a few seconds.

Every frame carries the same keyed pattern (``image`` codec, same payload), so averaging the luma of
the frames of any window cancels moving content while the mark adds up coherently; detection runs
the image detector on that mean frame (``WINDOW_SECONDS`` by default), so any 3 s are enough. The
working grid (fine or coarse, see the image codec) is chosen on the first frame and kept for all, so
the frames' patterns add up. Frames are decoded and re-encoded with PyAV (FFmpeg): H.264 (CRF 18,
yuv420p) for the video stream, the audio stream re-encoded to AAC.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image

from synthgate.errors import InvalidInput
from synthgate.labeling.watermark.base import DEFAULT_MAX_P_VALUE, Detection, NotEmbeddable
from synthgate.labeling.watermark.image import ImageCodec

WINDOW_SECONDS = 3.0
CRF = "18"


def _format_for(container: str) -> str:
    return {"mp4": "mp4", "mov": "mov", "mkv": "matroska"}.get(container, "mp4")


def embed_video(data: bytes, container: str, key: bytes, payload: bytes) -> bytes:
    codec = ImageCodec(key)
    try:
        source = av.open(io.BytesIO(data), "r")
    except av.error.FFmpegError as exc:
        raise InvalidInput(f"not a readable video: {exc}") from exc
    with source:
        if not source.streams.video:
            raise NotEmbeddable("the file has no video stream")
        vin = source.streams.video[0]
        ain = source.streams.audio[0] if source.streams.audio else None
        out_buffer = io.BytesIO()
        with av.open(out_buffer, "w", format=_format_for(container)) as target:
            rate = vin.average_rate or Fraction(25)
            vout: Any = target.add_stream("libx264", rate=rate)
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p"
            vout.options = {"crf": CRF, "preset": "veryfast"}
            aout: Any = None
            if ain is not None:
                aout = target.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
            frames, grid = 0, None  # grid: int | None, set on the first frame
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in source.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        image = frame.to_image()
                        if grid is None:  # one working grid for the whole clip, chosen on its first frame
                            grid = codec.choose_grid(image, payload)  # NotEmbeddable when too small
                        marked = codec.embed(image, payload, grid=grid)
                        new = av.VideoFrame.from_image(marked)
                        target.mux(vout.encode(new))
                        frames += 1
                    elif isinstance(frame, av.AudioFrame) and aout is not None:
                        frame.pts = None
                        target.mux(aout.encode(frame))
            target.mux(vout.encode())
            if aout is not None:
                target.mux(aout.encode())
        if frames == 0:
            raise NotEmbeddable("the video has no frames")
    return out_buffer.getvalue()


def detect_video(
    data: bytes, key: bytes, *, max_p_value: float = DEFAULT_MAX_P_VALUE, window: float = WINDOW_SECONDS
) -> Detection:
    """Mean luma of the first ``window`` seconds (all of it when shorter), then the image detector."""
    codec = ImageCodec(key)
    try:
        source = av.open(io.BytesIO(data), "r")
    except av.error.FFmpegError as exc:
        raise InvalidInput(f"not a readable video: {exc}") from exc
    with source:
        if not source.streams.video:
            return Detection(False, None, 1.0, 0.0, codec.name, details={"reason": "no video stream"})
        total: np.ndarray | None = None
        count, first = 0, None
        for frame in source.decode(video=0):
            t = frame.time if frame.time is not None else count / 25.0
            first = t if first is None else first
            if t - first > window:
                break
            luma = np.asarray(frame.to_image().convert("L"), dtype=np.float32)
            total = luma if total is None else total + luma
            count += 1
    if total is None:
        return Detection(False, None, 1.0, 0.0, codec.name, details={"reason": "no frames"})
    mean = Image.fromarray(np.clip(np.rint(total / count), 0, 255).astype(np.uint8), mode="L")
    found = codec.detect(mean, max_p_value=max_p_value)
    found.details["frames"] = count
    return found
