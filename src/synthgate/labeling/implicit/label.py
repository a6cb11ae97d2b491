"""The GB 45438-2025 Annex E implicit label: seven string fields, a restricted character set.

Values may only use printable ASCII without the space and the backslash (0x21, 0x23-0x5B,
0x5D-0x7E) plus the double quote, which Annex E allows escaped as ``\\"`` -- exactly what a JSON
encoder does with it, so the decoded value may hold a plain quote. Provider codes are checked with the GB-PC
validator (a 27-character code with a valid USCC inside).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from synthgate.errors import InvalidInput
from synthgate.identity.validators import InvalidIdentifier, parse_provider_code

FIELD_ORDER = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
LABEL_VALUES = {"1": "generated", "2": "possibly", "3": "suspected"}
# Annex E character set of a decoded value (the quote travels JSON-escaped).
_VALUE = re.compile(r"[\x21-\x5B\x5D-\x7E]*")
MAX_VALUE_LENGTH = 1024


class InvalidLabel(InvalidInput):
    code = "label.invalid"


@dataclass(frozen=True, slots=True)
class AigcLabel:
    """One AIGC object; every field is a string, empty when unused."""

    Label: str = "1"
    ContentProducer: str = ""
    ProduceID: str = ""
    ReservedCode1: str = ""
    ContentPropagator: str = ""
    PropagateID: str = ""
    ReservedCode2: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                raise InvalidLabel(f"AIGC field {f.name} must be a string", field=f.name)
            if len(value) > MAX_VALUE_LENGTH:
                raise InvalidLabel(f"AIGC field {f.name} is longer than {MAX_VALUE_LENGTH}", field=f.name)
            if not _VALUE.fullmatch(value):
                bad = next(c for c in value if not _VALUE.fullmatch(c))
                raise InvalidLabel(
                    f"AIGC field {f.name} holds {bad!r}, outside the GB 45438 Annex E character set "
                    "(printable ASCII without space or backslash; use codes, not names)",
                    field=f.name,
                )
        if self.Label not in LABEL_VALUES:
            raise InvalidLabel("AIGC Label must be '1', '2' or '3'", field="Label")
        for name in ("ContentProducer", "ContentPropagator"):
            value = getattr(self, name)
            if value:
                try:
                    parse_provider_code(value)
                except InvalidIdentifier as exc:
                    raise InvalidLabel(f"AIGC field {name}: {exc}", field=name) from exc

    def to_dict(self) -> dict[str, str]:
        data = asdict(self)
        return {name: data[name] for name in FIELD_ORDER}

    def to_json(self) -> str:
        """Compact JSON in Annex E field order (the bare object, as the practice guides store it)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True)

    def with_propagation(self, platform: str, content_id: str, reserved: str = "") -> AigcLabel:
        return replace(self, ContentPropagator=platform, PropagateID=content_id, ReservedCode2=reserved)

    @property
    def tier(self) -> str:
        return LABEL_VALUES[self.Label]


def _from_mapping(obj: Any) -> AigcLabel:
    if isinstance(obj, dict) and "AIGC" in obj and isinstance(obj["AIGC"], dict | str):
        inner = obj["AIGC"]
        return parse_aigc(inner) if isinstance(inner, str) else _from_mapping(inner)
    if not isinstance(obj, dict):
        raise InvalidLabel("AIGC value is not a JSON object")
    unknown = sorted(set(obj) - set(FIELD_ORDER))
    if unknown:
        raise InvalidLabel(f"AIGC object has unknown fields: {', '.join(unknown)}")
    if "Label" not in obj:
        raise InvalidLabel("AIGC object has no Label field", field="Label")
    values = {}
    for name in FIELD_ORDER:
        value = obj.get(name, "")
        # Some writers emit numbers for Label; the standard says strings, we normalise.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        values[name] = value
    return AigcLabel(**values)


def parse_aigc(text: str | bytes) -> AigcLabel:
    """Parse a label as found in the wild: bare object, ``{"AIGC": {...}}``, HTML-escaped JSON."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    candidate = text.strip().strip("\x00").strip()
    if "&quot;" in candidate or "&#34;" in candidate or "&#x22;" in candidate.lower():
        candidate = html.unescape(candidate)
    try:
        obj = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise InvalidLabel(f"AIGC value is not JSON: {exc.msg} at position {exc.pos}") from exc
    return _from_mapping(obj)
