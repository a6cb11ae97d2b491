"""XMP packets with the TC260 namespace: build, merge into existing XMP, and read back.

Merging is textual on purpose: every other property, prefix and byte of an existing packet stays
exactly as it was; only TC260:AIGC values are removed and one new ``rdf:Description`` is added.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from synthgate.labeling.implicit.base import FoundLabel
from synthgate.labeling.implicit.label import AigcLabel

TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PREFIX_DECL = re.compile(rb'xmlns:([A-Za-z_][\w.-]*)\s*=\s*["\']' + re.escape(TC260_NS.encode()) + rb'["\']')


def description(label: AigcLabel) -> bytes:
    return (
        f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}">'
        f"<TC260:AIGC>{escape(label.to_json())}</TC260:AIGC></rdf:Description>"
    ).encode()


def new_packet(label: AigcLabel) -> bytes:
    return (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="'
        + RDF_NS.encode()
        + b'">'
        + description(label)
        + b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def strip_label(xmp: bytes) -> bytes:
    """Remove every TC260 AIGC value (element or attribute form) from an XMP packet."""
    for prefix in set(_PREFIX_DECL.findall(xmp)):
        p = re.escape(prefix)
        xmp = re.sub(rb"<" + p + rb":AIGC\b[^>]*/>", b"", xmp)
        xmp = re.sub(rb"<" + p + rb":AIGC\b[^>]*>.*?</" + p + rb":AIGC\s*>", b"", xmp, flags=re.S)
        xmp = re.sub(rb"\s" + p + rb':AIGC\s*=\s*(?:"[^"]*"|\'[^\']*\')', b"", xmp)
    # A Description left empty (the one a previous write added) goes too, so rewrites don't grow.
    return re.sub(
        rb"<rdf:Description\b[^>]*" + re.escape(TC260_NS.encode()) + rb'"[^>]*>\s*</rdf:Description>',
        b"",
        xmp,
    )


def merge(existing: bytes | None, label: AigcLabel) -> bytes:
    """``existing`` with our label as its only AIGC value, or a fresh packet."""
    if not existing or b"</rdf:RDF>" not in existing:
        return new_packet(label)
    cleaned = strip_label(existing)
    at = cleaned.rfind(b"</rdf:RDF>")
    return cleaned[:at] + description(label) + cleaned[at:]


def _local(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def labels_in(xmp: bytes, where: str) -> list[FoundLabel]:
    """TC260:AIGC (or any property named AIGC) in a packet; HTML-escaped JSON is accepted."""
    found: list[FoundLabel] = []
    try:
        root = ET.fromstring(xmp.strip(b"\x00 \r\n\t").replace(b"\xef\xbb\xbf", b""))
    except ET.ParseError:
        # Broken XML still gets a best-effort scan so a damaged label is reported, not missed.
        for match in re.finditer(rb":AIGC\s*>(.*?)</", xmp, re.S):
            found.append(FoundLabel.parse(where, "xmp-unparsed", match.group(1)))
        return found
    for element in root.iter():
        ns, local = _local(element.tag)
        if "AIGC" in local and ns != RDF_NS:
            text = "".join(element.itertext())
            form = "xmp" if ns == TC260_NS else "xmp-other-namespace"
            if "&quot;" in text or "&#34;" in text:
                form += "-escaped"
            found.append(FoundLabel.parse(where, form, text))
        for attr, value in element.attrib.items():
            ans, alocal = _local(attr)
            if "AIGC" in alocal and ans != RDF_NS:
                form = "xmp-attribute" if ans == TC260_NS else "xmp-other-namespace"
                found.append(FoundLabel.parse(where, form, value))
    return found
