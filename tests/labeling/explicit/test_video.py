"""GB 45438 5.4: a text label ≥ 5 % high on every frame of the first ≥ 2 s; audio kept."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from synthgate.labeling.explicit import ExplicitOptions, labeler_for
from synthgate.labeling.explicit.render import layout
from synthgate.media import CorruptMedia, DecompressionBomb, MediaLimits, UnsupportedMedia

W, H, FPS, SECONDS = 320, 180, 10, 4.0


def make_video(fmt: str = "mp4", seconds: float = SECONDS, audio: bool = True) -> bytes:
    """A flat grey clip with a 440 Hz AAC track, written by PyAV (FFmpeg) itself."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = out.add_stream("aac", rate=22050, layout="mono") if audio else None
        grey = np.full((H, W, 3), 110, dtype=np.uint8)
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            t = np.arange(int(seconds * 22050)) / 22050
            pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 22050, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return buf.getvalue()


def _frames(data: bytes) -> list[tuple[float, np.ndarray]]:
    with av.open(io.BytesIO(data)) as container:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _ink_rows(rgb: np.ndarray, box: tuple[int, int, int, int]) -> int:
    left, top, right, bottom = box
    light = rgb[top:bottom, left:right].mean(axis=2) / 255.0
    rows = np.flatnonzero((light > 0.6).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_video()


@pytest.mark.parametrize("span", ["start", "start_end", "whole"])
def test_gb54_label_on_every_frame_of_first_2s_frame_by_frame(clip: bytes, span: str) -> None:
    options = ExplicitOptions(video_span=span)  # type: ignore[arg-type]
    out = labeler_for("video").apply(clip, "mp4", options)
    box = layout(W, H, options).box
    frames = _frames(out)
    assert len(frames) == int(SECONDS * FPS)
    for t, rgb in frames:
        labeled = _ink_rows(rgb, box)
        should = span == "whole" or t < 2.0 or (span == "start_end" and t >= SECONDS - 2.0)
        if should:
            assert labeled >= 0.05 * min(W, H), f"frame at {t:.2f}s: ink {labeled}px"
        else:
            assert labeled == 0, f"frame at {t:.2f}s should be unlabeled"
    shown = [t for t, rgb in frames if _ink_rows(rgb, box)]
    assert shown[0] == 0.0 and max(t for t in shown if t < 2.5) + 1 / FPS >= 2.0


def test_gb54_audio_track_copied_unchanged(clip: bytes) -> None:
    out = labeler_for("video").apply(clip, "mp4", ExplicitOptions())

    def audio_packets(data: bytes) -> list[bytes]:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "aac" and stream.codec_context.sample_rate == 22050
            return [bytes(p) for p in container.demux(stream) if p.size]

    assert audio_packets(out) == audio_packets(clip)


def test_gb54_matroska_video_labeled() -> None:
    data = make_video("matroska", seconds=2.5, audio=False)
    out = labeler_for("video").apply(data, "mkv", ExplicitOptions())
    box = layout(W, H, ExplicitOptions()).box
    frames = _frames(out)
    assert frames and all(_ink_rows(rgb, box) >= 0.05 * H for t, rgb in frames if t < 2.0)


def test_gb54_video_span_below_2s_refused() -> None:
    from synthgate.errors import InvalidInput

    with pytest.raises(InvalidInput):
        ExplicitOptions(video_seconds=1.5)


def test_gb54_truncated_video_is_a_clear_error(clip: bytes) -> None:
    with pytest.raises(CorruptMedia):
        labeler_for("video").apply(clip[: len(clip) // 3], "mp4", ExplicitOptions())


def test_gb54_overlong_video_refused(clip: bytes) -> None:
    with pytest.raises(DecompressionBomb):
        labeler_for("video").apply(clip, "mp4", ExplicitOptions(limits=MediaLimits(max_duration_seconds=1.0)))


def test_gb54_audio_only_file_is_not_a_video() -> None:
    with pytest.raises(UnsupportedMedia):
        labeler_for("video").apply(b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav", ExplicitOptions())
