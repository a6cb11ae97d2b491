"""The implicit label of a plain-text API answer (GB-E): a response field and a response header.

A text answer travels in a JSON body, not in a file with metadata, so its Annex E object goes
beside it: in the answer's ``labels.implicit`` field and in the ``X-AIGC-Label`` header (the
same compact JSON ``POST /v1/labels`` sends). ``ReservedCode1`` binds it to the delivered text,
explicit label included (:func:`~synthgate.labeling.implicit.binding.text_digest`), so whoever
stores the answer can later tell whether the text is still the one labeled::

    check_binding(label, b"", verifier, digest=text_digest(answer_text))

A streamed answer's headers leave before its text exists: its header carries the production fields
(``ReservedCode1`` empty) and the bound object arrives in the final chunk's ``synthgate.labels``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from synthgate.labeling.implicit.binding import SCHEMES, Signer, bind, scheme_of, text_digest
from synthgate.labeling.implicit.label import AigcLabel, InvalidLabel

if TYPE_CHECKING:
    from synthgate.gateway.pipeline import GenerationContext

HEADER = "X-AIGC-Label"
"""The response header holding the Annex E object (compact JSON, ASCII only: header-safe)."""


def text_answer_label(signer: Signer, producer: str, produce_id: str, text: str) -> AigcLabel:
    """The Annex E object for one delivered text, bound to it by ``signer``."""
    label = AigcLabel(Label="1", ContentProducer=producer, ProduceID=produce_id)
    return bind(label, b"", signer, digest=text_digest(text, SCHEMES[scheme_of(signer)]))


def label_object(labels: Mapping[str, Any]) -> dict[str, str] | None:
    """The answer's Annex E object from a generation's ``labels``: the text answer's, else the
    first delivered file's (a single-file answer such as an image or speech proxy call)."""
    implicit = labels.get("implicit")
    if isinstance(implicit, dict):
        return implicit
    for item in labels.get("media") or []:
        if isinstance(item, dict) and isinstance(item.get("label"), dict):
            return dict(item["label"])
    return None


def header_value(obj: Mapping[str, str]) -> str:
    return json.dumps(dict(obj), separators=(",", ":"), ensure_ascii=True)


def label_headers(labels: Mapping[str, Any]) -> dict[str, str]:
    """``{"X-AIGC-Label": ...}`` for an answer whose labels are known, else nothing."""
    obj = label_object(labels)
    return {HEADER: header_value(obj)} if obj is not None else {}


def context_label_headers(ctx: GenerationContext) -> dict[str, str]:
    """The header for a response built from ``ctx``: the bound object once the complete phase has
    run; before it (a stream's headers) the production fields, if the media_label stage will run."""
    found = label_headers(ctx.labels)
    if found or "media_label" not in ctx.settings.stages:
        return found
    try:
        early = AigcLabel(Label="1", ContentProducer=ctx.service.provider_code, ProduceID=ctx.produce_id)
    except InvalidLabel:
        return {}
    return {HEADER: early.to_json()}
