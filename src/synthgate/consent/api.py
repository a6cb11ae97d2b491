"""Consent requests for the provider's backend (scope ``generate``): start one, follow its status.

The link to answer goes to the person asked, never into these responses (DSP-14: their own channel).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from synthgate.consent import schemas
from synthgate.consent import service as consent
from synthgate.consent.notifiers import notifier_for
from synthgate.gateway.sdk import Gateway
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1/consents", tags=["consent"])
generate_scope = require_scope("generate")


@router.post("/requests", response_model=schemas.ConsentRequestOut, status_code=201)
def start(
    body: schemas.ConsentRequestCreate,
    caller: Caller = Depends(generate_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.ConsentRequestOut:
    """Ask a person for their separate consent to a face or voice edit; they get a link to answer."""
    with gateway.db.session() as session:
        started = consent.start_request(
            session,
            gateway.keys,
            gateway.settings,
            notifier_for(gateway),
            caller.service,
            requested_by=body.user,
            contact=body.contact,
            operations=body.operations,
            purpose=body.purpose,
        )
        return schemas.ConsentRequestOut(**consent.request_summary(started.request))


@router.get("/requests/{request_id}", response_model=schemas.ConsentRequestOut)
def show(
    request_id: str, caller: Caller = Depends(generate_scope), gateway: Gateway = Depends(get_gateway)
) -> schemas.ConsentRequestOut:
    with gateway.db.session() as session:
        return schemas.ConsentRequestOut(
            **consent.request_summary(consent.get_request(session, caller.service, request_id))
        )
