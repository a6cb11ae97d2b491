"""Implicit (metadata) labels per GB 45438-2025 Annex E: one writer and reader per container.

``write_label`` / ``read_labels`` sniff the container from the bytes and dispatch through the
``codecs`` registry (entry-point group ``synthgate.metadata_codecs`` for third-party containers).
"""

from synthgate.labeling.implicit import (  # noqa: F401  (importing registers the built-in codecs)
    audio_tags,
    av_containers,
    docx,
    gif,
    jpeg,
    mp4,
    png,
    text,
    tiff,
    wav,
    webp,
)
from synthgate.labeling.implicit.base import (
    FoundLabel,
    MetadataCodec,
    codec_for,
    codecs,
    read_labels,
    write_label,
)
from synthgate.labeling.implicit.binding import BindingStatus, bind, check_binding, content_digest
from synthgate.labeling.implicit.label import FIELD_ORDER, AigcLabel, InvalidLabel, parse_aigc
from synthgate.labeling.implicit.xmp import TC260_NS

__all__ = [
    "FIELD_ORDER",
    "TC260_NS",
    "AigcLabel",
    "BindingStatus",
    "FoundLabel",
    "InvalidLabel",
    "MetadataCodec",
    "bind",
    "check_binding",
    "codec_for",
    "codecs",
    "content_digest",
    "parse_aigc",
    "read_labels",
    "write_label",
]
