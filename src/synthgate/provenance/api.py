"""``POST /v1/trace``: find the generation behind a file or text (operators only; every trace is audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from synthgate.audit.api import AuditCaller, require_operator
from synthgate.errors import InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.provenance import service as provenance
from synthgate.web.deps import get_gateway

router = APIRouter(prefix="/v1", tags=["provenance"])

TRACE_ROLES = frozenset({"admin", "compliance", "auditor", "reviewer"})
ACCOUNT_ROLES = frozenset({"admin", "compliance"})
"""Who may see the (pseudonymous) account behind a trace: the roles that act on identity disputes."""

tracer = require_operator(TRACE_ROLES)


@router.post("/trace")
async def trace(
    request: Request, caller: AuditCaller = Depends(tracer), gateway: Gateway = Depends(get_gateway)
) -> Any:
    """The request body is the content itself (any type; size bounded by the body limit)."""
    data = await request.body()
    if not data:
        raise InvalidInput("send the file or text to trace as the request body")
    item = provenance.TraceInput(data=data, keys=gateway.keys, settings=gateway.settings)

    def run() -> dict[str, Any]:
        with gateway.db.session() as session:
            result = provenance.trace(
                session, item, actor=caller.actor, show_account=caller.role in ACCOUNT_ROLES
            )
            return result.as_dict()

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(run)
