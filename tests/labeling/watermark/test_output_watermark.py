"""The pipeline's entry points: embed_for_output / detect_any on images, audio and video items."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image, ImageDraw
from skimage import data

from synthgate.errors import InvalidInput
from synthgate.labeling.watermark import detect_any, ecc, embed_for_output
from synthgate.labeling.watermark.video import detect_video
from synthgate.media import MediaItem

KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("0123456789abcdef")


def png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def video(width: int, height: int, seconds: int = 5, fps: int = 8) -> bytes:
    """A moving H.264 clip in MP4, written with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            img = Image.new("RGB", (width, height), (40 + 2 * i, 90, 160))
            draw = ImageDraw.Draw(img)
            draw.ellipse((20 + 12 * i, 60, 220 + 12 * i, 260), fill=(230, 200, 40))
            draw.rectangle((600, 40 + 6 * i, 800, 200 + 6 * i), fill=(200, 30, 60))
            draw.text((30, height - 80), f"frame {i}  synthgate", fill=(255, 255, 255))
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_lm5_image_output_is_marked_and_found() -> None:
    item = MediaItem.from_bytes(png(Image.fromarray(data.astronaut())))
    marked, record = embed_for_output(item, PAYLOAD, KEY)
    assert record.embedded and record.payload == PAYLOAD.hex() and record.reason is None
    assert marked.container == "png" and marked.sha256 != item.sha256
    found = detect_any(marked, KEY)
    assert found.detected and found.payload == PAYLOAD.hex()
    assert not detect_any(item, KEY).detected


def test_lm5_too_small_image_is_recorded_not_embeddable_never_marked() -> None:
    item = MediaItem.from_bytes(png(Image.new("RGB", (96, 96), (10, 200, 30))))
    out, record = embed_for_output(item, PAYLOAD, KEY)
    assert not record.embedded and record.payload is None
    assert record.reason is not None and "too small" in record.reason
    assert out.data == item.data  # delivered unchanged, and the record says so


def test_lm5_gif_is_recorded_not_embeddable() -> None:
    buffer = io.BytesIO()
    Image.new("P", (300, 300)).save(buffer, "GIF")
    out, record = embed_for_output(MediaItem.from_bytes(buffer.getvalue()), PAYLOAD, KEY)
    assert not record.embedded and "gif" in (record.reason or "")
    assert out.data == buffer.getvalue()


def test_lm5_audio_output_is_marked_silent_audio_is_not(tmp_path: Path) -> None:
    wav = tmp_path / "s.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(wav), "Every generated voice carries a watermark. " * 3],
        check=True,
    )
    item = MediaItem.from_bytes(wav.read_bytes())
    marked, record = embed_for_output(item, PAYLOAD, KEY)
    assert record.embedded and marked.container == "wav"
    info = sf.info(io.BytesIO(marked.data))
    assert info.samplerate == sf.info(str(wav)).samplerate and info.subtype == "PCM_16"
    assert detect_any(marked, KEY).payload == PAYLOAD.hex()

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(16000 * 6, np.float32), 16000, format="WAV")
    silent = MediaItem.from_bytes(buffer.getvalue())
    out, record = embed_for_output(silent, PAYLOAD, KEY)
    assert not record.embedded and "silent" in (record.reason or "") and out.data == silent.data


def test_lm5_unreadable_audio_is_a_clear_error() -> None:
    item = MediaItem(data=b"RIFF\x00\x00\x00\x00WAVEjunk", container="wav", medium="audio")
    with pytest.raises(InvalidInput):
        embed_for_output(item, PAYLOAD, KEY)


@pytest.mark.parametrize("size", [(960, 544), (512, 384)])  # 512 × 384 becomes 256 × 192
def test_dsp18_video_survives_h264_crf28_and_half_size_from_any_three_seconds(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    item = MediaItem.from_bytes(video(*size))
    marked, record = embed_for_output(item, PAYLOAD, KEY)
    assert record.embedded and marked.container == "mp4"
    src, dst = tmp_path / "marked.mp4", tmp_path / "shared.mp4"
    src.write_bytes(marked.data)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-ss", "1.5", "-i", str(src), "-t", "3",
         "-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28", str(dst)],
        check=True,
    )  # fmt: skip
    found = detect_video(dst.read_bytes(), KEY)
    assert found.detected and found.payload == PAYLOAD.hex()
    assert found.details["frames"] >= 20
    assert not detect_any(item, KEY).detected


def test_lm5_false_decode_bound_and_random_words_are_rejected() -> None:
    bound = ecc.false_decode_probability(8)
    assert 1e-6 < bound < 3e-5
    rng = np.random.default_rng(1)
    accepted = sum(ecc.decode_soft(rng.normal(size=ecc.codeword_bits(8)), 8) is not None for _ in range(3000))
    assert accepted == 0  # expected ≤ 3000 · 2.1e-5 ≈ 0.06
