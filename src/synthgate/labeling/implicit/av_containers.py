"""MKV / WebM (``SimpleTag`` ``AIGC``), and fragmented MP4, through PyAV (FFmpeg's libavformat).

Rewriting EBML in place would move clusters and invalidate SeekHead and Cues offsets.

The file is remuxed with stream copy: every packet goes to the new container as it was, so
decoded frames and samples are identical; container and stream metadata are copied over. MP4 needs
``movflags=use_metadata_tags``, without which FFmpeg silently drops non-iTunes keys.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia


def _open(data: bytes) -> Any:
    import av

    try:
        return av.open(BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise CorruptMedia(f"the container cannot be opened: {exc}") from exc


class _AvCodec:
    where = "container metadata"
    form = "metadata"

    def _format(self, data: bytes) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def read(self, data: bytes) -> list[FoundLabel]:
        container = _open(data)
        try:
            return [
                FoundLabel.parse(f"{self.where} {key}", self.form, value)
                for key, value in container.metadata.items()
                if "AIGC" in key.upper()
            ]
        finally:
            container.close()

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        import av

        fmt, options = self._format(data)
        source = _open(data)
        sink = BytesIO()
        try:
            target = av.open(sink, mode="w", format=fmt, options=options)
            mapping = {}
            for stream in source.streams:
                if stream.type not in ("video", "audio", "subtitle"):
                    continue
                copy = target.add_stream_from_template(stream)
                copy.metadata.update(stream.metadata)
                mapping[stream.index] = copy
            metadata = {k: v for k, v in source.metadata.items() if "AIGC" not in k.upper()}
            target.metadata.update(metadata)
            target.metadata["AIGC"] = label.to_json()
            for packet in source.demux(*[source.streams[i] for i in mapping]):
                if packet.size == 0:
                    continue  # the demuxer's flush packet (Matroska B-frames legitimately lack a dts)
                packet.stream = mapping[packet.stream.index]
                target.mux(packet)
            target.close()
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"the container cannot be rewritten: {exc}") from exc
        finally:
            source.close()
        return sink.getvalue()


class Mp4RemuxCodec(_AvCodec):
    """Used by :mod:`.mp4` for fragmented files only; plain files are edited box by box."""

    where = "moov/udta/meta keys"
    form = "mp4-keys"

    def _format(self, data: bytes) -> tuple[str, dict[str, str]]:
        brand = data[8:12]
        return ("mov" if brand == b"qt  " else "mp4"), {"movflags": "use_metadata_tags"}


class MkvCodec(_AvCodec):
    where = "Tags/SimpleTag"
    form = "mkv-simpletag"

    def _format(self, data: bytes) -> tuple[str, dict[str, str]]:
        return ("webm" if b"webm" in data[:64] else "matroska"), {}


codecs.register("mkv")(MkvCodec)
