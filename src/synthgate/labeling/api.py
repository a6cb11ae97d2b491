"""``POST /v1/labels``: label one uploaded file completely (explicit, metadata, binding, C2PA).

The answer is the labeled file itself; the label written travels in the ``X-AIGC-Label`` header
(the bare Annex E object as JSON) so a client can store the produce id without parsing the file.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from synthgate.audit import service as audit
from synthgate.gateway.sdk import Gateway
from synthgate.labeling.c2pa import MIME_TYPES
from synthgate.labeling.service import LabelRequest, LabelService
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1/labels", tags=["labels"])
generate_scope = require_scope("generate")
_EXTRA_MIME = {
    "mkv": "video/x-matroska",
    "ogg": "audio/ogg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
}


def _labeler(request: Request, gateway: Gateway) -> LabelService:
    labeler: LabelService | None = getattr(request.app.state, "labeler", None)
    if labeler is None:
        labeler = LabelService(gateway.settings, gateway.keys)
        request.app.state.labeler = labeler
    return labeler


@router.post(
    "",
    response_class=Response,
    responses={200: {"description": "The labeled file", "content": {"application/octet-stream": {}}}},
)
def label_file(
    request: Request,
    file: UploadFile = File(..., description="The generated file (image, audio, video, document)"),
    produce_id: str | None = Form(None, description="Content id; default a new random id"),
    explicit: bool = Form(True, description="Add the visible/audible label (LM-4)"),
    edited: bool = Form(False, description="An AI edit of a user's file (C2PA c2pa.edited)"),
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    """Label a file with the calling service's provider code as ContentProducer."""
    data = file.file.read()
    result = _labeler(request, gateway).label(
        data,
        LabelRequest(
            producer=caller.service.provider_code, produce_id=produce_id, explicit=explicit, edited=edited
        ),
    )
    with gateway.db.session() as session:
        audit.record(
            session,
            "label.applied",
            actor=f"service:{caller.service.slug}",
            service_id=caller.service.id,
            subject_type="content",
            subject_id=result.label.ProduceID,
            data={
                "container": result.kind,
                "explicit": result.explicit,
                "c2pa": result.c2pa,
                "key": caller.key.prefix,
            },
        )
    media_type = MIME_TYPES.get(result.kind) or _EXTRA_MIME.get(result.kind, "application/octet-stream")
    return Response(
        content=result.data,
        media_type=media_type,
        headers={
            "X-AIGC-Label": result.label.to_json(),
            "X-Synthgate-Explicit": result.explicit,
            "X-Synthgate-C2PA": result.c2pa,
            "X-Synthgate-Notes": json.dumps(result.notes, ensure_ascii=True),
        },
    )
