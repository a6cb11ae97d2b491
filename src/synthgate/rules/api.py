"""Rules for the provider's backend: the current version, and an end user's acceptance (DSP-8)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from synthgate.errors import NotFound
from synthgate.gateway.sdk import Gateway
from synthgate.identity import service as identity
from synthgate.rules import service as rules
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1", tags=["rules"])


class RulesOut(BaseModel):
    version: str
    title: str
    body: str
    sha256: str
    published_at: str
    url: str


class Acceptance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=50)


class AcceptanceOut(BaseModel):
    user_id: str
    version: str
    accepted_at: str


@router.get("/rules", response_model=RulesOut)
def current_rules(
    caller: Caller = Depends(require_scope("accounts")), gateway: Gateway = Depends(get_gateway)
) -> RulesOut:
    with gateway.db.session() as session:
        latest = rules.current(session, caller.service)
        if latest is None:
            raise NotFound("this service has not published any rules")
        return RulesOut(
            version=latest.version,
            title=latest.title,
            body=latest.body,
            sha256=latest.body_sha256,
            published_at=latest.published_at.isoformat(),
            url=f"{gateway.settings.public_base_url}/rules/{caller.service.slug}",
        )


@router.post("/accounts/{user_id}/rules/accept", response_model=AcceptanceOut)
def accept_rules(
    user_id: str,
    body: Acceptance,
    caller: Caller = Depends(require_scope("accounts")),
    gateway: Gateway = Depends(get_gateway),
) -> AcceptanceOut:
    with gateway.db.session() as session:
        account = identity.get_account(session, caller.service, user_id)
        acceptance = rules.accept(session, account, body.version)
        return AcceptanceOut(
            user_id=user_id, version=body.version, accepted_at=acceptance.accepted_at.isoformat()
        )
