"""GB 45438 5.3: an audible label — the rhythm cue "short-long-short-short" and/or a spoken prompt.

The rhythm cue is Morse for "AI" (· − · ·) synthesised at the file's own sample rate. The spoken
prompt is ``data/voice_zh.flac`` ("本内容由人工智能生成", 10 characters in 4.3 s, about 140
characters per minute, inside the 120-160 the standard asks for). It was made once with Debian's
``espeak-ng -v cmn -s 150`` and trimmed; it ships inside the package, so nothing is synthesised or
downloaded at run time. The label is inserted (not mixed) at the start, end and/or middle; sample
rate, channel count, container and sample format stay those of the input, and so do the tags
(every ID3 frame, Vorbis comment and picture, carried over with mutagen).
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import soundfile as sf

from synthgate.labeling.explicit import ExplicitOptions, accept, labelers
from synthgate.media import CorruptMedia, MediaLimits, UnsupportedMedia
from synthgate.media.sniff import AUDIO_KINDS

FORMATS = frozenset(AUDIO_KINDS)
# Morse timing: one unit per dot and per gap inside a letter, three per dash and between letters.
UNIT_SECONDS = 0.09
TONE_HZ = 880.0
LEVEL = 0.5
GAP_SECONDS = 0.25
PATTERN = ((1, 1), (3, 3), (1, 1), (1, 0))
"""(tone units, silence units after it): short, long, short, short — "AI"."""
_SOUNDFILE_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
_EXACT_DTYPE = {"PCM_16": "int16", "PCM_S8": "int16", "PCM_U8": "int16", "PCM_24": "int32", "PCM_32": "int32"}


def rhythm_cue(sample_rate: int) -> np.ndarray:
    """Mono float cue with short fades so the tone edges do not click."""
    unit = round(UNIT_SECONDS * sample_rate)
    fade = max(1, round(0.005 * sample_rate))
    parts: list[np.ndarray] = [np.zeros(round(GAP_SECONDS * sample_rate))]
    for tone_units, gap_units in PATTERN:
        n = tone_units * unit
        t = np.arange(n) / sample_rate
        tone = LEVEL * np.sin(2 * np.pi * TONE_HZ * t)
        ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / fade)
        parts.append(tone * ramp)
        parts.append(np.zeros(gap_units * unit))
    parts.append(np.zeros(round(GAP_SECONDS * sample_rate)))
    return np.concatenate(parts)


@lru_cache(maxsize=1)
def _voice_clip() -> tuple[np.ndarray, int]:
    ref = resources.files("synthgate.labeling.explicit").joinpath("data/voice_zh.flac")
    samples, rate = sf.read(io.BytesIO(ref.read_bytes()), dtype="float64", always_2d=False)
    return np.asarray(samples), int(rate)


@lru_cache(maxsize=16)
def voice_prompt(sample_rate: int) -> np.ndarray:
    clip, rate = _voice_clip()
    if rate == sample_rate:
        resampled = clip
    else:
        n = round(len(clip) * sample_rate / rate)
        resampled = np.interp(np.arange(n) * rate / sample_rate, np.arange(len(clip)), clip)
    pad = np.zeros(round(GAP_SECONDS * sample_rate))
    return np.concatenate([pad, resampled, pad])


def label_audio(options: ExplicitOptions, sample_rate: int) -> np.ndarray:
    parts: list[np.ndarray] = []
    if options.audio_cue in ("rhythm", "both"):
        parts.append(rhythm_cue(sample_rate))
    if options.audio_cue in ("voice", "both"):
        parts.append(voice_prompt(sample_rate))
    return np.concatenate(parts)


def insert_label(samples: np.ndarray, label: np.ndarray, placements: tuple[str, ...]) -> np.ndarray:
    """``samples`` is (frames, channels); the mono label goes to every channel."""
    block = np.repeat(label[:, None], samples.shape[1], axis=1).astype(samples.dtype)
    pieces: list[np.ndarray] = []
    if "start" in placements:
        pieces.append(block)
    if "middle" in placements:
        half = samples.shape[0] // 2
        pieces.extend([samples[:half], block, samples[half:]])
    else:
        pieces.append(samples)
    if "end" in placements:
        pieces.append(block)
    return np.concatenate(pieces, axis=0)


def _info(data: bytes, kind: str, limits: MediaLimits) -> Any:
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise CorruptMedia(f"cannot read this {kind} audio: {exc}") from exc
    if info.samplerate <= 0 or info.channels <= 0:
        raise CorruptMedia(f"{kind} audio declares no sample rate or channels")
    limits.check_duration(info.frames / info.samplerate)
    return info


def _check_wav_sizes(data: bytes) -> None:
    """A WAV whose data chunk claims more bytes than the file holds is truncated, not short."""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            # 0 and 0xFFFFFFFF are what streaming writers leave when the length was unknown.
            if size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data):
                raise CorruptMedia(
                    f"truncated WAV: the data chunk declares {size} bytes, "
                    f"the file holds {len(data) - pos - 8}"
                )
            return
        pos += 8 + size + (size & 1)


# Frames that describe the old audio stream, wrong once the cue is inserted (length, seek table).
_STALE_ID3 = frozenset({"TLEN", "MLLT", "SYTC", "ETCO"})


def carry_tags(source: bytes, labeled: bytes, kind: str) -> bytes:
    """``labeled`` with every tag of ``source`` that libsndfile did not copy (it knows a handful of
    text fields): all ID3 frames of an MP3 (cover art, lyrics, TXXX ...), all Vorbis comments and
    pictures of a FLAC or Ogg file. Done with mutagen, which rewrites tag blocks only."""
    if kind not in ("mp3", "flac", "ogg"):
        return labeled
    import mutagen
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, ID3NoHeaderError

    buf = io.BytesIO(labeled)
    try:
        if kind == "mp3":
            try:
                tags = ID3(io.BytesIO(source))
            except ID3NoHeaderError:
                return labeled
            for frame_id in _STALE_ID3:
                tags.delall(frame_id)
            tags.save(buf, v2_version=4 if tags.version[1] != 3 else 3)
            return buf.getvalue()
        original: Any = FLAC(io.BytesIO(source)) if kind == "flac" else mutagen.File(io.BytesIO(source))
        target: Any = FLAC(buf) if kind == "flac" else mutagen.File(buf)
        if original is None or target is None or original.tags is None:
            return labeled
        if target.tags is None:
            target.add_tags()
        target.tags.clear()
        for key, value in original.tags:
            target.tags.append((key, value))
        if kind == "flac":
            target.clear_pictures()
            for picture in original.pictures:
                target.add_picture(picture)
        buf.seek(0)
        target.save(buf)
    except Exception as exc:  # mutagen's errors: the source tags are not readable as such
        raise CorruptMedia(f"the {kind} tags cannot be carried over: {exc}") from exc
    return buf.getvalue()


class AudioLabeler:
    medium = "audio"
    formats = FORMATS

    def apply(self, data: bytes, kind: str, options: ExplicitOptions) -> bytes:
        kind = accept(data, FORMATS, "an audio file", options.limits)
        if kind == "wav":
            _check_wav_sizes(data)
        info = _info(data, kind, options.limits)
        # Integer PCM round-trips exactly through integers; everything else through float64.
        dtype = _EXACT_DTYPE.get(info.subtype, "float64")
        try:
            with sf.SoundFile(io.BytesIO(data)) as src:
                tags = src.copy_metadata()
                samples = src.read(dtype=dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptMedia(f"corrupt or truncated {kind} audio: {exc}") from exc
        if samples.shape[0] == 0 or samples.shape[0] < info.frames * 0.99:
            raise CorruptMedia(f"truncated {kind} audio: {samples.shape[0]} of {info.frames} frames decoded")
        label = label_audio(options, info.samplerate)
        if dtype != "float64":
            label = label * (2 ** (31 if dtype == "int32" else 15))
        labeled = insert_label(samples, label, options.audio_placement)
        out = io.BytesIO()
        try:
            with sf.SoundFile(
                out,
                "w",
                samplerate=info.samplerate,
                channels=info.channels,
                format=_SOUNDFILE_FORMATS[kind],
                subtype=info.subtype,
                endian=info.endian if kind == "wav" else "FILE",
            ) as dst:
                for key, value in tags.items():
                    setattr(dst, key, value)
                dst.write(labeled)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise UnsupportedMedia(f"cannot write {kind} audio as {info.subtype}: {exc}") from exc
        return carry_tags(data, out.getvalue(), kind)


@labelers.register("audio")
def _audio_labeler() -> AudioLabeler:
    return AudioLabeler()
