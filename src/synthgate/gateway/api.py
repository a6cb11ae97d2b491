"""The two-phase API: check before the provider's model runs, complete with its output."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from synthgate.errors import NotFound
from synthgate.gateway import schemas
from synthgate.gateway.sdk import Gateway, messages_to_text
from synthgate.governance.models import Service
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1/generations", tags=["generations"])
generate_scope = require_scope("generate")


def filing(service: Service) -> schemas.Filing:
    """DSP-19: the filing number and public-notice link travel with every answer."""
    return schemas.Filing(number=service.filing_number, link=service.filing_link)


@router.post("", response_model=schemas.CheckResponse, status_code=201)
def check(
    body: schemas.CheckRequest,
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.CheckResponse:
    """Identity, rules and input screening. 201 with a ticket, or 403 with the refusal reason."""
    text = body.input if body.input is not None else messages_to_text(body.messages or [])
    result = gateway.service.check(caller.service, body.user, text, model=body.model, medium=body.medium)
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
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.CompleteResponse:
    """Output screening, labels and the generation record; returns the output to deliver."""
    done = gateway.service.complete(caller.service, ticket_id, body.output)
    return schemas.CompleteResponse(
        produce_id=done.produce_id,
        output=done.output,
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
            model=generation.model,
            streamed=generation.streamed,
            input_sha256=generation.input_sha256,
            output_sha256=generation.output_sha256,
            labels=generation.labels,
            verdicts=generation.verdicts,
            created_at=generation.created_at.isoformat(),
        )
