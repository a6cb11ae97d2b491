"""The audit log: latest events with filters, and verification of the whole log against its checkpoints."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from synthgate import jobs
from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.audit.service import VerifyReport
from synthgate.operators import service as operators
from synthgate.web.console import queries
from synthgate.web.console.common import PREFIX, Viewer, action, get_gateway, page, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 200


def _page(
    request: Request,
    viewer: Viewer,
    *,
    event_type: str = "",
    subject: str = "",
    actor: str = "",
    report: VerifyReport | None = None,
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        events = queries.audit_events(
            session,
            event_type=event_type.strip() or None,
            subject_id=subject.strip() or None,
            actor=actor.strip() or None,
            limit=PAGE_SIZE,
        )
        state = queries.audit_state(session)
    rows = [(e, json.dumps(e.data, ensure_ascii=False, sort_keys=True)) for e in events]
    return render(
        request,
        "console/audit.html",
        viewer,
        {
            "rows": rows,
            "state": state,
            "report": report,
            "filters": {"type": event_type, "subject": subject, "actor": actor},
            "page_size": PAGE_SIZE,
        },
        ok="The log verifies: every leaf and every signed checkpoint match."
        if report and report.ok
        else None,
        error="The log does NOT verify — see the problems below." if report and not report.ok else None,
    )


@router.get("/audit", response_class=HTMLResponse)
def events(
    request: Request,
    type: str = "",
    subject: str = "",
    actor: str = "",
    viewer: Viewer = Depends(page("audit.read")),
) -> HTMLResponse:
    return _page(request, viewer, event_type=type, subject=subject, actor=actor)


@router.post("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, viewer: Viewer = Depends(action("audit.verify"))) -> HTMLResponse:
    gateway = get_gateway(request)
    # Sequence whatever is pending and sign the head first, so the check covers everything up to now.
    jobs.integrate_and_checkpoint(gateway)
    signer = jobs.audit_signer(gateway)
    with gateway.db.session() as session:
        report = audit.verify(session, NoteVerifier(signer.name, signer.public_key))
        operators.record_action(
            session,
            viewer.actor,
            "audit.verified",
            subject_type="audit_log",
            data={
                "ok": report.ok,
                "size": report.size,
                "checkpoints": report.checkpoints,
                "first_bad_index": report.first_bad_index,
            },
        )
    return _page(request, viewer, report=report)
