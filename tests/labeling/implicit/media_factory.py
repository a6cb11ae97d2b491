"""Small real files of every container, made with Pillow, soundfile, PyAV and python zipfile."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np


def image(fmt: str, mode: str = "RGB", size: tuple[int, int] = (40, 30), **save: object) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGB").convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def animated_gif() -> bytes:
    from PIL import Image

    frames = [Image.new("P", (20, 20), color=i) for i in (1, 5, 9)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def wav(seconds: float = 0.2, rate: int = 8000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([samples, samples[::-1]], axis=1), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def flac() -> bytes:
    return wav(fmt="FLAC", subtype="PCM_16")


def ogg() -> bytes:
    return wav(fmt="OGG", subtype="VORBIS")


def mp3(tagged: bool = True) -> bytes:
    return _av_audio("mp3", "libmp3lame", tagged)


def _av_audio(fmt: str, codec: str, tagged: bool) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=8000, layout="mono")
        if tagged:
            out.metadata["title"] = "probe"
        for i in range(6):
            frame = av.AudioFrame.from_ndarray(
                (np.sin(np.arange(1152) / 5 + i) * 8000).astype(np.int16)[None, :],
                format="s16",
                layout="mono",
            )
            frame.sample_rate = 8000
            frame.pts = i * 1152
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def video(
    fmt: str = "mp4",
    vcodec: str = "libx264",
    frames: int = 6,
    faststart: bool = False,
    fragmented: bool = False,
) -> bytes:
    import av

    if faststart:  # FFmpeg's faststart pass re-reads the file, so it needs a real path
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"v.{fmt}"
            with av.open(str(path), "w", format=fmt, options={"movflags": "faststart"}) as out:
                _frames(out, vcodec, frames)
            return path.read_bytes()
    buf = io.BytesIO()
    options = {"movflags": "frag_keyframe+empty_moov"} if fragmented else {}
    with av.open(buf, "w", format=fmt, options=options) as out:
        _frames(out, vcodec, frames)
    return buf.getvalue()


def _frames(out: Any, vcodec: str, frames: int) -> None:
    import av

    out.metadata["title"] = "probe"
    vs = out.add_stream(vcodec, rate=10)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    rng = np.random.default_rng(3)
    for i in range(frames):
        arr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        frame.pts = i
        for packet in vs.encode(frame):
            out.mux(packet)
    for packet in vs.encode(None):
        out.mux(packet)


def docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        z.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            "<w:body><w:p><w:r><w:t>人工智能生成的文字</w:t></w:r></w:p></w:body></w:document>",
        )
    return buf.getvalue()
