"""The two-phase API: check before the provider's model runs, complete with its output."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Response

from synthgate.errors import InvalidInput, NotFound
from synthgate.gateway import schemas
from synthgate.gateway.sdk import Gateway, messages_to_text
from synthgate.governance.models import Service
from synthgate.labeling.answer import label_headers
from synthgate.media import MediaItem, MediaLimits
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1/generations", tags=["generations"])
generate_scope = require_scope("generate")


def filing(service: Service) -> schemas.Filing:
    """DSP-19: the filing number and public-notice link travel with every answer."""
    return schemas.Filing(number=service.filing_number, link=service.filing_link)


def decode_media(parts: list[schemas.MediaIn], gateway: Gateway) -> list[MediaItem]:
    """Base64 parts into sniffed, size-checked items; the claim of a kind is never trusted."""
    limits = MediaLimits.from_settings(gateway.settings)
    items = []
    for index, part in enumerate(parts):
        try:
            data = base64.b64decode(part.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"media[{index}].data is not valid base64", field=f"media[{index}]") from exc
        items.append(MediaItem.from_bytes(data, role=part.role, limits=limits))
    return items


def media_out(items: list[MediaItem]) -> list[schemas.MediaOut]:
    return [
        schemas.MediaOut(
            data=base64.b64encode(item.data).decode(),
            container=item.container,
            medium=item.medium,
            sha256=item.sha256,
        )
        for item in items
    ]


@router.post("", response_model=schemas.CheckResponse, status_code=201)
def check(
    body: schemas.CheckRequest,
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.CheckResponse:
    """Identity, rules, input screening and consent. 201 with a ticket, or 403 with the refusal reason."""
    text = body.input if body.input is not None else messages_to_text(body.messages or [])
    result = gateway.service.check(
        caller.service,
        body.user,
        text,
        model=body.model,
        medium=body.medium,
        operation=body.operation,
        media=decode_media(body.media, gateway),
        without_explicit_label=body.without_explicit_label,
    )
    return schemas.CheckResponse(
        ticket_id=result.ticket_id,
        produce_id=result.produce_id,
        expires_at=result.expires_at.isoformat(),
        label_notice=result.label_notice,
        filing=filing(caller.service),
    )


@router.post("/{ticket_id}/complete", response_model=schemas.CompleteResponse)
def complete(
    ticket_id: str,
    body: schemas.CompleteRequest,
    response: Response,
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.CompleteResponse:
    """Output screening, labels and the generation record; returns the output to deliver."""
    done = gateway.service.complete(
        caller.service, ticket_id, body.output, media=decode_media(body.media, gateway)
    )
    # GB-E for a text answer: the Annex E object of labels.implicit, also as a header.
    response.headers.update(label_headers(done.labels))
    return schemas.CompleteResponse(
        produce_id=done.produce_id,
        output=done.output,
        media=media_out(done.media),
        labels=done.labels,
        verdicts=done.verdicts,
        filing=filing(caller.service),
    )


@router.get("/{produce_id}", response_model=schemas.GenerationOut)
def show(
    produce_id: str, caller: Caller = Depends(generate_scope), gateway: Gateway = Depends(get_gateway)
) -> schemas.GenerationOut:
    with gateway.db.session() as session:
        generation = gateway.service.generation(session, produce_id)
        if generation is None or generation.service_id != caller.service.id:
            raise NotFound(f"no generation {produce_id!r} in this service")
        return schemas.GenerationOut(
            produce_id=generation.produce_id,
            mode=generation.mode,
            medium=generation.medium,
            operation=generation.operation,
            model=generation.model,
            streamed=generation.streamed,
            input_sha256=generation.input_sha256,
            output_sha256=generation.output_sha256,
            labels=generation.labels,
            verdicts=generation.verdicts,
            created_at=generation.created_at.isoformat(),
        )
