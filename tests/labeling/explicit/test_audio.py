"""GB 45438 5.3: audible label (rhythm cue short-long-short-short and/or a spoken prompt)."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
import soundfile as sf

from synthgate.labeling.explicit import ExplicitOptions, labeler_for
from synthgate.labeling.explicit.audio import UNIT_SECONDS, _voice_clip, label_audio, voice_prompt
from synthgate.media import CorruptMedia, DecompressionBomb, MediaLimits

SR = 22050


def _content(seconds: float = 2.0, sr: int = SR, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.08 * np.sin(2 * np.pi * 220 * t)
    return np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=1)


def _encode(samples: np.ndarray, fmt: str, subtype: str, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _segments(samples: np.ndarray, sr: int, threshold: float = 0.2) -> list[tuple[float, float]]:
    """(start, duration) in seconds of the loud tone bursts, from a 5 ms RMS envelope."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    hop = int(0.005 * sr)
    n = len(mono) // hop
    rms = np.sqrt((mono[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    loud = rms > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(int), [0]])))
    return [(s * hop / sr, (e - s) * hop / sr) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def _assert_morse_ai(segments: list[tuple[float, float]]) -> None:
    durations = [d for _, d in segments]
    assert len(durations) == 4, f"expected 4 tone bursts, got {durations}"
    short = np.mean([durations[0], durations[2], durations[3]])
    assert abs(short - UNIT_SECONDS) < 0.03
    assert durations[1] / short > 2.4, "the second tone must be long (dash)"


def _label(data: bytes, **options: object) -> bytes:
    return labeler_for("audio").apply(data, "", ExplicitOptions(**options))  # type: ignore[arg-type]


def test_gb53_rhythm_cue_short_long_short_short_at_start_content_kept() -> None:
    content = _content()
    data = _encode(content, "WAV", "PCM_16")
    out, sr = sf.read(io.BytesIO(_label(data)), dtype="int16")
    original, _ = sf.read(io.BytesIO(data), dtype="int16")
    added = len(out) - len(original)
    segments = _segments(out[:added].astype(np.float64) / 32768, sr)
    _assert_morse_ai(segments)
    assert np.array_equal(out[added:], original), "the content after the cue is sample-exact"


@pytest.mark.parametrize("placement", ["start", "middle", "end"])
def test_gb53_cue_placement(placement: str) -> None:
    data = _encode(_content(4.0), "WAV", "PCM_16")
    out, sr = sf.read(io.BytesIO(_label(data, audio_placement=(placement,))))
    segments = _segments(out, sr)
    _assert_morse_ai(segments)
    where = segments[0][0] / (len(out) / sr)
    expected = {"start": (0, 0.2), "middle": (0.35, 0.65), "end": (0.7, 1.0)}[placement]
    assert expected[0] <= where <= expected[1]


@pytest.mark.parametrize(
    ("fmt", "subtype", "sr", "channels"),
    [
        ("WAV", "PCM_16", 22050, 2),
        ("WAV", "PCM_24", 48000, 1),
        ("WAV", "FLOAT", 16000, 2),
        ("FLAC", "PCM_16", 44100, 2),
        ("OGG", "VORBIS", 22050, 1),
        ("MP3", "MPEG_LAYER_III", 44100, 2),
    ],
)
def test_gb53_format_rate_channels_preserved(fmt: str, subtype: str, sr: int, channels: int) -> None:
    data = _encode(_content(1.5, sr, channels), fmt, subtype, sr)
    out = _label(data)
    info = sf.info(io.BytesIO(out))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, subtype, sr, channels)
    # A second decoder (FFmpeg through PyAV) reads the same rate and channels and hears the cue.
    with av.open(io.BytesIO(out)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == sr and stream.codec_context.channels == channels
        pcm = np.concatenate(
            [
                f.to_ndarray().reshape(-1, channels) if f.format.is_packed else f.to_ndarray().T
                for f in container.decode(stream)
            ]
        )
    _assert_morse_ai(_segments(pcm.astype(np.float64), sr)[:4])


def test_gb53_voice_prompt_rate_120_to_160_characters_per_minute() -> None:
    clip, rate = _voice_clip()
    active = np.flatnonzero(np.abs(clip) > 0.01)
    seconds = (active[-1] - active[0]) / rate
    characters = len("本内容由人工智能生成")
    assert 120 <= characters / seconds * 60 <= 160
    data = _encode(_content(1.0), "WAV", "PCM_16")
    out = sf.info(io.BytesIO(_label(data, audio_cue="voice")))
    assert out.frames - SR == len(voice_prompt(SR))


def test_gb53_both_cue_and_voice() -> None:
    label = label_audio(ExplicitOptions(audio_cue="both"), SR)
    assert len(label) == len(label_audio(ExplicitOptions(), SR)) + len(voice_prompt(SR))


def test_gb53_truncated_audio_is_a_clear_error() -> None:
    data = _encode(_content(2.0), "FLAC", "PCM_16")
    with pytest.raises(CorruptMedia):
        _label(data[: len(data) // 3])


def test_gb53_overlong_audio_refused_from_its_header() -> None:
    data = _encode(_content(2.0), "WAV", "PCM_16")
    with pytest.raises(DecompressionBomb):
        labeler_for("audio").apply(data, "wav", ExplicitOptions(limits=MediaLimits(max_duration_seconds=1.0)))
    # A header declaring ~6 hours over 100 bytes of samples: truncated, refused.
    header = (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFF0)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, SR, SR * 4, 4, 16)
    )
    bomb = header + b"data" + struct.pack("<I", 0x7FFFFF00) + b"\0" * 100
    with pytest.raises((DecompressionBomb, CorruptMedia)):
        _label(bomb)


def _tagged_mp3() -> bytes:
    from mutagen.id3 import APIC, COMM, ID3, TIT2, TLEN, TPE1, TXXX, USLT

    buf = io.BytesIO()
    sf.write(buf, 0.2 * np.sin(np.arange(16000) / 7)[:, None], 16000, format="MP3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["海港"]))
    tags.add(TPE1(encoding=3, text=["synthgate"]))
    tags.add(COMM(encoding=3, lang="chi", desc="", text=["a comment libsndfile drops"]))
    tags.add(USLT(encoding=3, lang="chi", desc="", text="歌词"))
    tags.add(TXXX(encoding=3, desc="session", text=["s-42"]))
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=b"\x89PNG fake cover"))
    tags.add(TLEN(encoding=3, text=["1000"]))
    buf.seek(0)
    tags.save(buf)
    return buf.getvalue()


def test_gb53_mp3_keeps_every_id3_frame_through_the_cue() -> None:
    """libsndfile copies a handful of text fields; cover art, lyrics, comments, TXXX must survive."""
    from mutagen.id3 import ID3

    labeled = labeler_for("audio").apply(_tagged_mp3(), "mp3", ExplicitOptions())
    tags = ID3(io.BytesIO(labeled))
    assert str(tags["TIT2"]) == "海港" and str(tags["TPE1"]) == "synthgate"
    assert tags.getall("COMM")[0].text == ["a comment libsndfile drops"]
    assert tags.getall("USLT")[0].text == "歌词"
    assert tags.getall("TXXX:session")[0].text == ["s-42"]
    assert tags.getall("APIC")[0].data == b"\x89PNG fake cover"
    # The length frame described the audio before the cue: dropped rather than left wrong.
    assert not tags.getall("TLEN")
    assert sf.info(io.BytesIO(labeled)).frames > 16000  # the cue really was inserted


def test_gb53_flac_keeps_comments_and_pictures_through_the_cue() -> None:
    from mutagen.flac import FLAC, Picture

    buf = io.BytesIO()
    sf.write(buf, 0.2 * np.sin(np.arange(16000) / 7), 16000, format="FLAC", subtype="PCM_16")
    source = FLAC(io.BytesIO(buf.getvalue()))
    source["ALBUM"] = "港口"
    source["CUSTOMKEY"] = "kept"
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", b"\x89PNG cover"
    source.add_picture(picture)
    out = io.BytesIO(buf.getvalue())
    source.save(out)

    labeled = FLAC(io.BytesIO(labeler_for("audio").apply(out.getvalue(), "flac", ExplicitOptions())))
    assert labeled["ALBUM"] == ["港口"] and labeled["CUSTOMKEY"] == ["kept"]
    assert [p.data for p in labeled.pictures] == [b"\x89PNG cover"]
