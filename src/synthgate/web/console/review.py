"""The human review queue (DSP-10): queues by category and level, claim, decide, escalate.

Thin over ``moderation.review``: the pages list and show, the forms claim and decide; the domain
checks leases, levels and four-eyes and writes the audit events. Held pictures are blurred until
the reviewer reveals them (reviewer wellness), with a greyscale option; both are CSS toggles, as
console pages run no scripts.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate.errors import SynthgateError
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.moderation import review
from synthgate.moderation.policy import EXTRA_CATEGORIES, TC_A_CATEGORIES
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


@router.get("/review", response_class=HTMLResponse)
def review_queue(
    request: Request,
    category: str = "",
    level: int = 0,
    decided: bool = False,
    viewer: Viewer = Depends(page("review.read")),
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        items = review.queue(session, category=category or None, level=level or None, decided=decided)
        counts = review.counts(session)
        services = {s.id: s.slug for s in governance.list_services(session)}
    return render(
        request,
        "console/review.html",
        viewer,
        {
            "items": items,
            "counts": counts,
            "services": services,
            "category": category,
            "level": level,
            "decided": decided,
            "overdue": {i.id for i in items if review.is_overdue(i)},
        },
    )


def _item_page(
    request: Request, viewer: Viewer, item_id: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        with html_errors(viewer):
            item = review.get(session, item_id)
        service = session.get(Service, item.service_id)
        content = review.held_content(gateway.keys, item)
        session.expunge(item)
    return render(
        request,
        "console/review_item.html",
        viewer,
        {
            "item": item,
            "service": service,
            "content": content,
            "overdue": review.is_overdue(item),
            "categories": {**TC_A_CATEGORIES, **EXTRA_CATEGORIES},
            "mine": item.claimed_by == viewer.actor,
            "senior": viewer.role in review.SENIOR_ROLES,
        },
        error=error,
        status_code=status_code,
    )


@router.get("/review/{item_id}", response_class=HTMLResponse)
def review_item(
    item_id: str, request: Request, viewer: Viewer = Depends(page("review.read"))
) -> HTMLResponse:
    return _item_page(request, viewer, item_id)


@router.post("/review/{item_id}/claim", response_class=HTMLResponse)
def claim(item_id: str, request: Request, viewer: Viewer = Depends(action("review.decide"))) -> Response:
    try:
        with get_gateway(request).db.session() as session:
            review.claim(session, item_id, actor=viewer.actor, role=viewer.role)
    except SynthgateError as exc:
        return _item_page(request, viewer, item_id, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/review/{item_id}", ok="Claimed: the item is yours for 15 minutes.")


@router.post("/review/{item_id}/decide", response_class=HTMLResponse)
def decide(
    item_id: str,
    request: Request,
    decision: str = Form(""),
    category: str = Form(""),
    note: str = Form(""),
    add_to_bank: str = Form(""),
    bank: str = Form(""),
    propose_term: str = Form(""),
    viewer: Viewer = Depends(action("review.decide")),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            item = review.decide(
                session,
                gateway.keys,
                item_id,
                actor=viewer.actor,
                role=viewer.role,
                decision=decision,
                category=category,
                note=note.replace("\r\n", "\n"),
                add_to_bank=(bank.strip() or "default") if add_to_bank else None,
                propose_term=propose_term,
            )
            status, callback = item.status, item.callback_status
    except SynthgateError as exc:
        return _item_page(request, viewer, item_id, error=exc.message, status_code=exc.status_code)
    if status == "pending":
        return redirect(request, f"{PREFIX}/review", ok="Escalated to the second level.")
    if callback == "pending":
        callback = review.deliver_callback(gateway.db, gateway.keys, item_id, actor=viewer.actor)
    message = f"The item was {status}."
    if callback != "none":
        message += f" Provider callback: {callback}."
    return redirect(request, f"{PREFIX}/review/{item_id}", ok=message)


@router.post("/review/{item_id}/callback", response_class=HTMLResponse)
def retry_callback(
    item_id: str, request: Request, viewer: Viewer = Depends(action("review.decide"))
) -> Response:
    gateway = get_gateway(request)
    with html_errors(viewer):
        status = review.deliver_callback(gateway.db, gateway.keys, item_id, actor=viewer.actor)
    return redirect(request, f"{PREFIX}/review/{item_id}", ok=f"Provider callback: {status}.")
