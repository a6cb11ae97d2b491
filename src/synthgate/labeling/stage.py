"""The ``media_label`` pipeline stage (complete phase): every delivered output carries its labels.

For each of the model's output files (``ctx.output_media``) it applies, through
:class:`~synthgate.labeling.service.LabelService`, in this order: the explicit label (GB-5.2-5.4,
LM-4), the invisible watermark where a codec carries it (LM-5; payload = the generation's
watermark payload under the service's key, so a found mark leads back to the record), the metadata
label bound to the marked content (GB-E, ``ProduceID`` = the generation's produce id) and the C2PA
manifest when a signing certificate is configured. The labeled files become ``ctx.labeled_media``,
which is what is delivered and recorded; a file that cannot be labeled stops the completion with
a clear error, so nothing leaves unlabeled.

A text answer gets its Annex E object bound to the delivered text (``labels["implicit"]``), which
the API returns in the answer and in the ``X-AIGC-Label`` header (:mod:`.answer`).

Registered through the ``synthgate.stages`` entry point; it runs after ``explicit_label`` (text)
and before ``record``.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from synthgate.config import Settings
from synthgate.gateway.pipeline import GenerationContext, Phase
from synthgate.keys import KeyStore
from synthgate.labeling.answer import text_answer_label
from synthgate.labeling.service import LabelRequest, LabelService


def is_edit(ctx: GenerationContext) -> bool:
    """C2PA ``c2pa.edited`` (``compositeWithTrainedAlgorithmicMedia``): the output was made from a
    user's file (a face swap, a voice conversion, an image edit), not from a prompt alone.

    The complete phase of the two-phase API has the ticket's operation but not its input files, so
    a typed operation other than generation (``face.swap``, ``voice.clone`` ...) counts as an edit.
    """
    if ctx.input_media:
        return True
    return ctx.operation != "generate" and not ctx.operation.endswith((".generate", ".speech"))


class MediaLabelStage:
    name = "media_label"
    phase: Phase = "complete"

    def __init__(self) -> None:
        # One LabelService per (settings, key store): it holds the font layout, the signing keys
        # and the C2PA signer, loaded once. Objects are kept with their ids so an id is never reused.
        self._services: dict[tuple[int, int], tuple[Settings, KeyStore, LabelService]] = {}
        self._lock = threading.Lock()

    def labeler(self, ctx: GenerationContext) -> LabelService:
        key = (id(ctx.settings), id(ctx.keys))
        with self._lock:
            found = self._services.get(key)
            if found is None:
                found = (ctx.settings, ctx.keys, LabelService(ctx.settings, ctx.keys))
                self._services[key] = found
            return found[2]

    def run(self, ctx: GenerationContext, session: Session) -> None:
        labeler = self.labeler(ctx)
        if ctx.output_media:
            self._label_media(ctx, labeler)
        delivered = ctx.labeled_output if ctx.labeled_output is not None else ctx.output_text
        if delivered is not None:
            label = text_answer_label(
                labeler.binding_key, ctx.service.provider_code, ctx.produce_id, delivered
            )
            ctx.labels["implicit"] = label.to_dict()
            ctx.note(self.name, text_label=True, binding=label.ReservedCode1.split(".", 1)[0])

    def _label_media(self, ctx: GenerationContext, labeler: LabelService) -> None:
        from synthgate.provenance.digests import watermark_payload

        watermark = None
        if ctx.settings.label_media_watermark:
            watermark = (ctx.keys.watermark_key(ctx.service.id), watermark_payload(ctx.produce_id))
        request = LabelRequest(
            producer=ctx.service.provider_code,
            produce_id=ctx.produce_id,
            explicit=not ctx.explicit_label_waived,  # LM-9: the user asked for it without
            c2pa=True,
            edited=is_edit(ctx),
            watermark=watermark,
        )
        delivered = []
        records: list[dict[str, Any]] = []
        for item in ctx.output_media:
            result = labeler.label(item.data, request)
            labeled = item.replace_data(result.data)
            delivered.append(labeled)
            record = result.to_dict()
            record.update(sha256=labeled.sha256, role=item.role)
            records.append(record)
        ctx.labeled_media = delivered
        ctx.labels["media"] = records
        applied = [r for r in records if r["explicit"] == "applied"]
        if len(applied) == len(records):
            # Read by provenance.explicitly_labeled: every file carries its explicit label (LM-4).
            ctx.labels["explicit_media"] = {
                "items": len(records),
                "text": labeler.options.text,
                "image_position": labeler.options.position,
                "audio_cue": labeler.options.audio_cue,
                "video_span": labeler.options.video_span,
            }
        ctx.note(
            self.name,
            items=len(records),
            containers=[r["container"] for r in records],
            explicit=[r["explicit"] for r in records],
            c2pa=[r["c2pa"] for r in records],
            watermark=[bool((r.get("watermark") or {}).get("embedded")) for r in records],
        )
