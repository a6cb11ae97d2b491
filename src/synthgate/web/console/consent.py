"""Biometric-edit consents (DSP-14): subjects, requests, consents, revocations and consent refusals.

Operators see ids, operations, dates and signature checks, never a template or a clear phone
number (a subject is found by the keyed hash of their number). Compliance may revoke a consent on
the subject's behalf (for instance when they ask by phone); that is audited like the subject's own.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from synthgate.consent import service as consent
from synthgate.consent.models import ConsentSubject
from synthgate.gateway.models import Refusal
from synthgate.governance import service as governance
from synthgate.web.console.common import (
    PREFIX,
    Viewer,
    action,
    get_gateway,
    html_errors,
    page,
    redirect,
    render,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

_STATUSES = ("active", "revoked", "expired")


@router.get("/consent", response_class=HTMLResponse)
def overview(
    request: Request,
    service: str = "",
    status: str = "",
    phone: str = "",
    viewer: Viewer = Depends(page("consent.read")),
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        services = governance.list_services(session)
        service_id = next((s.id for s in services if s.slug == service or s.id == service), None)
        status_filter = status if status in _STATUSES else None
        consents = consent.list_consents(session, service_id=service_id, status=status_filter)
        if phone.strip():
            subjects = consent.find_subject(session, gateway.keys, phone.strip()[:40])
            ids = {s.id for s in subjects}
            consents = [c for c in consents if c.subject_id in ids]
        else:
            subjects = consent.list_subjects(session, service_id=service_id, limit=50)
        requests = consent.list_requests(session, service_id=service_id, limit=50)
        revocations = [
            c for c in consent.list_consents(session, service_id=service_id, status="revoked", limit=50)
        ]
        refusals_stmt = (
            select(Refusal)
            .where(Refusal.reason.like("consent.%"))
            .order_by(Refusal.created_at.desc())
            .limit(50)
        )
        if service_id:
            refusals_stmt = refusals_stmt.where(Refusal.service_id == service_id)
        refusals = list(session.scalars(refusals_stmt))
        counts = consent.template_counts(session, [c.id for c in consents])
    return render(
        request,
        "console/consent.html",
        viewer,
        {
            "services": services,
            "services_by_id": {s.id: s for s in services},
            "service": service,
            "status": status_filter or "",
            "statuses": _STATUSES,
            "phone": phone.strip()[:40],
            "consents": consents,
            "subjects": subjects,
            "requests": requests,
            "revocations": revocations,
            "refusals": refusals,
            "template_counts": counts,
        },
    )


@router.get("/consent/{consent_id}", response_class=HTMLResponse)
def detail(consent_id: str, request: Request, viewer: Viewer = Depends(page("consent.read"))) -> HTMLResponse:
    gateway = get_gateway(request)
    with html_errors(viewer), gateway.db.session() as session:
        record = consent.get_consent(session, consent_id)
        subject = session.get(ConsentSubject, record.subject_id)
        counts = consent.template_counts(session, [record.id])
        signature_ok = consent.verify_signature(gateway.keys, record)
        service = governance.get_service(session, record.service_id)
    return render(
        request,
        "console/consent_detail.html",
        viewer,
        {
            "c": record,
            "subject": subject,
            "service_obj": service,
            "templates": counts.get(record.id, 0),
            "signature_ok": signature_ok,
        },
    )


@router.post("/consent/{consent_id}/revoke")
def revoke(
    consent_id: str,
    request: Request,
    reason: str = Form(""),
    viewer: Viewer = Depends(action("consent.revoke")),
) -> Response:
    gateway = get_gateway(request)
    with html_errors(viewer), gateway.db.session() as session:
        record = consent.get_consent(session, consent_id)
        consent.revoke(session, record, actor=viewer.actor, reason=reason or "")
    return redirect(
        request, f"{PREFIX}/consent/{consent_id}", ok="Consent revoked; its templates are deleted."
    )
