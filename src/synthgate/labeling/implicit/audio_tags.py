"""MP3 (ID3v2 ``TXXX:AIGC``), FLAC and Ogg (Vorbis comment ``AIGC=``), through mutagen.

mutagen rewrites only the tag blocks; audio frames are copied untouched, so samples cannot change.
Every other ID3 frame or Vorbis comment is kept.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia, UnsupportedMedia


def _mutagen_errors(exc: Exception) -> CorruptMedia:
    return CorruptMedia(f"the audio tags cannot be read: {exc}")


class Mp3Codec:
    def _tags(self, buf: BytesIO) -> Any:
        from mutagen.id3 import ID3, ID3NoHeaderError

        try:
            return ID3(buf)
        except ID3NoHeaderError:
            return ID3()
        except Exception as exc:
            raise _mutagen_errors(exc) from exc

    def read(self, data: bytes) -> list[FoundLabel]:
        tags = self._tags(BytesIO(data))
        found = []
        for frame in tags.getall("TXXX"):
            if "AIGC" in frame.desc:
                for text in frame.text:
                    found.append(FoundLabel.parse(f"ID3v2 TXXX:{frame.desc}", "id3-txxx", str(text)))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        from mutagen.id3 import TXXX

        buf = BytesIO(data)
        tags = self._tags(buf)
        for frame in list(tags.getall("TXXX")):
            if "AIGC" in frame.desc:
                tags.delall(frame.HashKey)
        # Latin-1 (encoding 0) is enough for the ASCII-only Annex E value and reads everywhere.
        tags.add(TXXX(encoding=0, desc="AIGC", text=[label.to_json()]))
        buf.seek(0)  # mutagen saves from the current position of a file object
        try:
            tags.save(buf, v2_version=tags.version[1] if tags.version[1] in (3, 4) else 4)
        except Exception as exc:
            raise _mutagen_errors(exc) from exc
        return buf.getvalue()


def _vorbis_file(buf: BytesIO, kind: str) -> Any:
    import mutagen
    from mutagen.flac import FLAC

    try:
        audio = FLAC(buf) if kind == "flac" else mutagen.File(buf)
    except Exception as exc:
        raise _mutagen_errors(exc) from exc
    if audio is None:
        raise UnsupportedMedia("an Ogg stream with a codec we cannot tag (Vorbis, Opus, FLAC, Speex are)")
    if audio.tags is None:
        audio.add_tags()
    return audio


class VorbisCodec:
    kind = "flac"

    def read(self, data: bytes) -> list[FoundLabel]:
        audio = _vorbis_file(BytesIO(data), self.kind)
        found = []
        for key, value in audio.tags:
            if "AIGC" in key.upper():
                found.append(FoundLabel.parse(f"Vorbis comment {key}", "vorbis-comment", value))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        buf = BytesIO(data)
        audio = _vorbis_file(buf, self.kind)
        for key in {k for k, _ in audio.tags if "AIGC" in k.upper()}:
            del audio.tags[key]
        audio.tags["AIGC"] = [label.to_json()]
        buf.seek(0)
        try:
            audio.save(buf)
        except Exception as exc:
            raise _mutagen_errors(exc) from exc
        return buf.getvalue()


class OggCodec(VorbisCodec):
    kind = "ogg"


codecs.register("mp3")(Mp3Codec)
codecs.register("flac")(VorbisCodec)
codecs.register("ogg")(OggCodec)
