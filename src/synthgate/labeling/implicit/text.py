"""Markdown (YAML front matter key ``AIGC``) and HTML (``<meta name="AIGC" content="...">``).

Both writers only add or replace the label itself, so removing it (:func:`strip_label`) gives the
original text back; the binding digest of a text is taken over that stripped text.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import yaml

from synthgate.labeling.implicit.base import FoundLabel, codecs
from synthgate.labeling.implicit.label import AigcLabel
from synthgate.media.errors import CorruptMedia

_FRONT = re.compile(r"\A(\ufeff?)---[ \t]*\r?\n(.*?)(?:^|\n)(---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_AIGC_KEY = re.compile(r"^AIGC[ \t]*:.*(?:\r?\n[ \t]+.*)*(?:\r?\n)?", re.M)
_META = re.compile(r"""<meta\s[^>]*\bname\s*=\s*["']?[^"'>]*AIGC[^>]*>""", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_HTML = re.compile(r"<html\b[^>]*>", re.I)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptMedia("the text is not valid UTF-8") from exc


def _yaml_scalar(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def strip_markdown(text: str) -> str:
    match = _FRONT.match(text)
    if not match:
        return text
    body = _AIGC_KEY.sub("", match.group(2))
    if not body.strip():
        return text[match.end() :]
    return text[: match.start(2)] + body + text[match.start(2) + len(match.group(2)) :]


def strip_html(text: str) -> str:
    return _META.sub("", text)


class _MetaFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {k.lower(): v or "" for k, v in attrs}
        name = values.get("name") or values.get("property") or ""
        if "AIGC" in name.upper():
            self.found.append((name, values.get("content", "")))


class MarkdownCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        text = _decode(data)
        match = _FRONT.match(text)
        if not match:
            return []
        try:
            front = yaml.safe_load(match.group(2))
        except yaml.YAMLError:
            return [
                FoundLabel.parse("YAML front matter", "yaml-unparsed", m) for m in _AIGC_KEY.findall(text)
            ]
        if not isinstance(front, dict):
            return []
        found = []
        for key, value in front.items():
            if "AIGC" in str(key).upper():
                raw = value if isinstance(value, str) else json.dumps(value)
                found.append(FoundLabel.parse(f"YAML front matter {key}", "yaml-front-matter", raw))
        return found

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        text = strip_markdown(_decode(data))
        line = f"AIGC: {_yaml_scalar(label.to_json())}\n"
        match = _FRONT.match(text)
        if match:
            return (text[: match.start(2)] + line + text[match.start(2) :]).encode()
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        return f"{bom}---\n{line}---\n{text[len(bom) :]}".encode()


class HtmlCodec:
    def read(self, data: bytes) -> list[FoundLabel]:
        finder = _MetaFinder()
        finder.feed(_decode(data))
        return [FoundLabel.parse(f'<meta name="{n}">', "html-meta", c) for n, c in finder.found]

    def write(self, data: bytes, label: AigcLabel) -> bytes:
        text = strip_html(_decode(data))
        tag = f'<meta name="AIGC" content="{html.escape(label.to_json(), quote=True)}">'
        anchor = _HEAD.search(text) or _HTML.search(text)
        at = anchor.end() if anchor else 0
        return (text[:at] + tag + text[at:]).encode()


codecs.register("markdown")(MarkdownCodec)
codecs.register("html")(HtmlCodec)
