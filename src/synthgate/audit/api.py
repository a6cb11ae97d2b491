"""Audit log over HTTP for operators and auditors: checkpoints, inclusion and consistency proofs.

Access: a console operator session (roles admin, compliance, auditor), sent as the console cookie
or as ``Authorization: Bearer <session token>``. API keys belong to a provider's *services* and
never see the whole log; a key with an ``audit`` scope is accepted too, should governance ever
issue one. Every answer can be checked by the caller against the signed checkpoint it carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from synthgate import jobs
from synthgate.audit import service as audit
from synthgate.errors import Forbidden, Unauthorized
from synthgate.gateway.sdk import Gateway
from synthgate.operators import service as operators
from synthgate.web.deps import authenticate_key, bearer, get_gateway

router = APIRouter(prefix="/v1/audit", tags=["audit"])

AUDIT_ROLES = frozenset({"admin", "compliance", "auditor"})
SESSION_COOKIE = "sg_console"


@dataclass(frozen=True)
class AuditCaller:
    actor: str
    role: str


def require_operator(roles: frozenset[str]) -> Callable[..., AuditCaller]:
    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        gateway: Gateway = Depends(get_gateway),
    ) -> AuditCaller:
        token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
        if not token:
            raise Unauthorized("an operator session is required (console cookie or Bearer session token)")
        if token.startswith("sg_"):
            caller = authenticate_key(gateway, token, "audit")
            return AuditCaller(actor=f"service:{caller.service.slug}", role="audit-key")
        with gateway.db.session() as session:
            resolved = operators.resolve_session(session, token)
            if resolved is None:
                raise Unauthorized("the operator session is unknown or has expired")
            operator, _ = resolved
            if operator.must_change_password:
                raise Forbidden("set your own password in the console first")
            caller_role, username = operator.role, operator.username
        if caller_role not in roles:
            raise Forbidden(f"the {caller_role} role may not use this endpoint", code="forbidden.role")
        return AuditCaller(actor=f"operator:{username}", role=caller_role)

    return dependency


auditor = require_operator(AUDIT_ROLES)


@router.get("/checkpoint")
def checkpoint(caller: AuditCaller = Depends(auditor), gateway: Gateway = Depends(get_gateway)) -> Any:
    """The newest signed checkpoint (sequencing pending events first) and the key that verifies it."""
    jobs.integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        latest = audit.checkpoint_at(session, None)
        return {
            "size": latest.size,
            "root": latest.root,
            "note": latest.note,
            "vkey": jobs.audit_signer(gateway).vkey(),
        }


@router.get("/proof/inclusion")
def inclusion(
    index: int = Query(ge=0),
    size: int | None = Query(default=None, ge=1, description="Tree size of a signed checkpoint"),
    caller: AuditCaller = Depends(auditor),
    gateway: Gateway = Depends(get_gateway),
) -> Any:
    """RFC 9162 inclusion proof of leaf ``index`` in the checkpoint of ``size`` (default newest)."""
    jobs.integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        return audit.inclusion(session, index, size)


@router.get("/proof/consistency")
def consistency(
    old: int = Query(ge=0, description="Tree size of the older signed checkpoint"),
    new: int | None = Query(default=None, ge=1, description="Tree size of the newer one"),
    caller: AuditCaller = Depends(auditor),
    gateway: Gateway = Depends(get_gateway),
) -> Any:
    """RFC 9162 consistency proof between two signed checkpoints."""
    with gateway.db.session() as session:
        return audit.consistency(session, old, new)


@router.get("/verify")
def verify(
    start: int | None = Query(default=None, alias="from", ge=0),
    end: int | None = Query(default=None, alias="to", ge=0),
    caller: AuditCaller = Depends(auditor),
    gateway: Gateway = Depends(get_gateway),
) -> Any:
    """Recompute the leaves (optionally ``[from, to)``) and check every checkpoint; the check is audited."""
    jobs.integrate_and_checkpoint(gateway)
    verifier = jobs.audit_signer(gateway).verifier()
    with gateway.db.session() as session:
        report = audit.verify(session, verifier, start=start, end=end)
        audit.record(
            session,
            "audit.verified",
            actor=caller.actor,
            subject_type="audit_log",
            data={"ok": report.ok, "size": report.size, "first_bad_index": report.first_bad_index},
        )
    return report.as_dict()
