"""GB-5.1 explicit labels for text, including streamed text.

GB 45438 asks for two elements in every explicit label: an AI element ("人工智能" or "AI") and a
generation element ("生成" and/or "合成"); the label goes at the start, the end or a suitable
middle position of the text, or in a persistent notice beside it in the interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from synthgate.errors import InvalidInput

Position = Literal["start", "end", "both"]
_AI_ELEMENT = re.compile(r"人工智能|(?<![A-Za-z])AI(?![A-Za-z])")
_GENERATION_ELEMENT = re.compile(r"生成|合成")


def check_label_wording(text: str) -> str:
    """Reject wording that would not be a conformant explicit label (e.g. a bare "AI")."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("label text must be a non-empty string", field="label_text")
    if not _AI_ELEMENT.search(text):
        raise InvalidInput(
            "label text needs the AI element ('人工智能' or 'AI') required by GB 45438 5.1",
            field="label_text",
        )
    if not _GENERATION_ELEMENT.search(text):
        raise InvalidInput(
            "label text needs the generation element ('生成' or '合成') required by GB 45438 5.1",
            field="label_text",
        )
    return text


def is_conformant_label(text: str) -> bool:
    return bool(_AI_ELEMENT.search(text) and _GENERATION_ELEMENT.search(text))


@dataclass(frozen=True)
class TextLabel:
    text: str
    position: Position = "end"

    def __post_init__(self) -> None:
        check_label_wording(self.text)

    @property
    def prefix(self) -> str:
        return self.text + "\n" if self.position in ("start", "both") else ""

    @property
    def suffix(self) -> str:
        return "\n" + self.text if self.position in ("end", "both") else ""

    def apply(self, content: str) -> str:
        return self.prefix + content + self.suffix

    def describe(self) -> dict[str, str]:
        return {"type": "explicit", "medium": "text", "text": self.text, "position": self.position}
