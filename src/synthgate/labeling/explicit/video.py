"""GB 45438 5.4: a text label ≥ 5 % of the shortest side, shown ≥ 2 s from the first frame.

The video stream is decoded and re-encoded with PyAV (H.264, or VP9 for WebM); the label is drawn
on the frames inside the configured span (the first seconds, first and last seconds, or the whole
video). Audio and other streams are copied packet for packet, so the sound is bit-identical.
Frame timestamps are kept, so the label's on-screen time is measured in presentation time.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av
import numpy as np

from synthgate.labeling.explicit import ExplicitOptions, accept, labelers
from synthgate.labeling.explicit.render import blend, layout
from synthgate.media import CorruptMedia, UnsupportedMedia
from synthgate.media.sniff import VIDEO_KINDS

FORMATS = frozenset(VIDEO_KINDS)
_WEBM_CODECS = {"vp8", "vp9", "av1"}
_WHITE = np.array([255, 255, 255], dtype=np.float32)
_BLACK = np.array([0, 0, 0], dtype=np.float32)


def _frame_seconds(frame: Any) -> float | None:
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


def _in_span(t: float, duration: float, options: ExplicitOptions) -> bool:
    if options.video_span == "whole":
        return True
    if t < options.video_seconds:
        return True
    return options.video_span == "start_end" and t >= duration - options.video_seconds


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return (container.duration or 0) / 1_000_000


class VideoLabeler:
    medium = "video"
    formats = FORMATS

    def apply(self, data: bytes, kind: str, options: ExplicitOptions) -> bytes:
        kind = accept(data, FORMATS, "a video", options.limits)
        try:
            return self._relabel(data, kind, options)
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"corrupt or truncated {kind} video: {exc}") from exc

    def _relabel(self, data: bytes, kind: str, options: ExplicitOptions) -> bytes:
        try:
            src = av.open(io.BytesIO(data), mode="r")
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise CorruptMedia(f"cannot open this {kind} video: {exc}") from exc
        with src:
            if not src.streams.video:
                raise UnsupportedMedia(f"this {kind} file has no video stream to label")
            vin = src.streams.video[0]
            width, height = vin.codec_context.width, vin.codec_context.height
            options.limits.check_pixels(width, height)
            duration = _duration(src, vin)
            options.limits.check_duration(duration)
            lay = layout(width, height, options)
            left, top, right, bottom = lay.box

            webm = kind == "mkv" and vin.codec_context.name in _WEBM_CODECS
            out_buf = io.BytesIO()
            dst = av.open(
                out_buf, mode="w", format="webm" if webm else ("mp4" if kind == "mp4" else "matroska")
            )
            with dst:
                rate = vin.average_rate or vin.guessed_rate or Fraction(25)
                vout: Any = dst.add_stream("libvpx-vp9" if webm else "libx264", rate=rate)
                vout.width, vout.height = width, height
                even = width % 2 == 0 and height % 2 == 0
                vout.pix_fmt = "yuv420p" if even else "yuv444p"
                vout.time_base = vin.time_base
                vout.options = {"crf": "20", "preset": "veryfast"} if not webm else {"crf": "32", "b": "0"}
                copied = {}
                for stream in src.streams:
                    if stream.type == "audio":
                        copied[stream.index] = dst.add_stream_from_template(stream)
                decoded = 0
                for packet in src.demux(vin, *[s for s in src.streams if s.index in copied]):
                    if packet.stream.index in copied:
                        if packet.dts is None:
                            continue
                        packet.stream = copied[packet.stream.index]
                        dst.mux(packet)
                        continue
                    for decoded_frame in packet.decode():
                        frame: Any = decoded_frame
                        decoded += 1
                        t = _frame_seconds(frame)
                        if t is not None:
                            # A header can understate the length; the decoded timestamps cannot.
                            options.limits.check_duration(t)
                        if t is None or t < 0 or _in_span(t, duration, options):
                            rgb = frame.to_ndarray(format="rgb24")
                            rgb[top:bottom, left:right] = blend(
                                rgb[top:bottom, left:right], lay, _BLACK, _WHITE
                            )
                            labeled = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                            labeled.pts, labeled.time_base = frame.pts, frame.time_base
                            frame = labeled
                        dst.mux(vout.encode(frame))
                if decoded == 0:
                    raise CorruptMedia(f"no decodable video frames in this {kind} file")
                dst.mux(vout.encode(None))
        return out_buf.getvalue()


@labelers.register("video")
def _video_labeler() -> VideoLabeler:
    return VideoLabeler()
