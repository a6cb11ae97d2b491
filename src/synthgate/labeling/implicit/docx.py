"""DOCX (OOXML): the label is the custom property ``AIGC`` in ``docProps/custom.xml``.

The package is rebuilt entry by entry: every other part is copied with its own compression and
bytes (``word/document.xml`` is never touched); only ``docProps/custom.xml`` and, when the part is
new, its content-type override and package relationship change.
"""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from xml.sax.saxutils import escape

from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia

CUSTOM = "docProps/custom.xml"
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
CUSTOM_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
CUSTOM_TYPE = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
MAX_PART = 16 * 1024 * 1024
_PROPERTY = re.compile(
    r'<(?:\w+:)?property\b[^>]*\bname="([^"]*AIGC[^"]*)"[^>]*>(.*?)</(?:\w+:)?property>', re.S
)
_VALUE = re.compile(r"<(?:\w+:)?lpwstr>(.*?)</(?:\w+:)?lpwstr>", re.S)


def _archive(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CorruptMedia(f"the document is not a readable ZIP package: {exc}") from exc


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_PART:
        raise CorruptMedia(f"{name} is larger than {MAX_PART} bytes once unpacked")
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptMedia(f"{name} cannot be unpacked (corrupt or truncated): {exc}") from exc


def _property(label: AigcLabel, pid: int) -> str:
    return (
        f'<property fmtid="{FMTID}" pid="{pid}" name="AIGC">'
        f"<vt:lpwstr>{escape(label.to_json())}</vt:lpwstr></property>"
    )


def _custom_xml(existing: str | None, label: AigcLabel) -> str:
    if existing is None or "</Properties>" not in existing:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<Properties xmlns="{CUSTOM_NS}" xmlns:vt="{VT_NS}">{_property(label, 2)}</Properties>'
        )
    match = _PROPERTY.search(existing)
    if match:  # update in place, keep its pid, drop any duplicate
        pid_match = re.search(r'pid="(\d+)"', match.group(0))
        pid = int(pid_match.group(1)) if pid_match else 2
        rest = _PROPERTY.sub("", existing[match.end() :])
        return existing[: match.start()] + _property(label, pid) + rest
    pids = [int(p) for p in re.findall(r'pid="(\d+)"', existing)]
    at = existing.rfind("</Properties>")
    return existing[:at] + _property(label, max(pids, default=1) + 1) + existing[at:]


class DocxCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        with _archive(data) as archive:
            if CUSTOM not in archive.namelist():
                return []
            xml = _read(archive, CUSTOM).decode("utf-8", errors="replace")
        found = []
        for name, body in _PROPERTY.findall(xml):
            value = _VALUE.search(body)
            raw = value.group(1) if value else body
            found.append(FoundLabel.parse(f"{CUSTOM} {name}", "docx-custom", _unescape_xml(raw)))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        sink = BytesIO()
        with _archive(data) as source, zipfile.ZipFile(sink, "w") as target:
            names = source.namelist()
            existing = _read(source, CUSTOM).decode("utf-8") if CUSTOM in names else None
            for info in source.infolist():
                body = _read(source, info.filename)
                if info.filename == CUSTOM:
                    body = _custom_xml(existing, label).encode()
                elif info.filename == "[Content_Types].xml" and existing is None:
                    body = _add_override(body.decode("utf-8")).encode()
                elif info.filename == "_rels/.rels" and existing is None:
                    body = _add_relationship(body.decode("utf-8")).encode()
                target.writestr(info, body, compress_type=info.compress_type)
            if existing is None:
                target.writestr(CUSTOM, _custom_xml(None, label), compress_type=zipfile.ZIP_DEFLATED)
        return sink.getvalue()


def _unescape_xml(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


def _add_override(types: str) -> str:
    if f'PartName="/{CUSTOM}"' in types:
        return types
    at = types.rfind("</Types>")
    return types[:at] + f'<Override PartName="/{CUSTOM}" ContentType="{CUSTOM_TYPE}"/>' + types[at:]


def _add_relationship(rels: str) -> str:
    if CUSTOM_REL in rels:
        return rels
    ids = {int(i) for i in re.findall(r'Id="rId(\d+)"', rels)}
    rid = max(ids, default=0) + 1
    at = rels.rfind("</Relationships>")
    return rels[:at] + f'<Relationship Id="rId{rid}" Type="{CUSTOM_REL}" Target="{CUSTOM}"/>' + rels[at:]


codecs.register("docx")(DocxCodec)
