"""Complaint cases, appeals and the outbox in the console (DSP-10/11/12, GAI-14/15).

Thin over ``cases.service``: the queue lists open cases by deadline (overdue first), the case page
shows the complaints (decrypted for the reviewer), the generation and account tracing found, and
the decision form with its statement of reasons and actions. Every form writes through the
service, which appends the audit events; notices and reports are delivered after the commit and
their delivery status is kept in the outbox.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate import jobs
from synthgate.cases import process
from synthgate.cases import service as cases
from synthgate.cases.models import Complaint
from synthgate.errors import Forbidden, InvalidInput, SynthgateError
from synthgate.gateway.sdk import Gateway
from synthgate.moderation.policy import EXTRA_CATEGORIES, TC_A_CATEGORIES
from synthgate.web.console.common import (
    PREFIX,
    Viewer,
    action,
    get_gateway,
    html_errors,
    page,
    parse_utc,
    redirect,
    render,
    split_terms,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/cases", response_class=HTMLResponse)
def case_queue(
    request: Request, status: str = "open", viewer: Viewer = Depends(page("cases.read"))
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        items = cases.queue(session, status=status if status != "all" else None)
        rows = [
            {
                "case": c,
                "overdue": cases.is_overdue(c),
                "left": cases.workdays_left(gateway.settings, c) if c.status == "open" else None,
            }
            for c in items
        ]
        session.expunge_all()
    return render(
        request,
        "console/cases.html",
        viewer,
        {"rows": rows, "status": status, "categories": process.CATEGORIES},
    )


def _case_page(
    request: Request, viewer: Viewer, case_id: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        with html_errors(viewer):
            case = cases.get_case(session, case_id)
        complaints = cases.complaints_of(session, gateway.keys, case)
        evidence: list[str] = []
        for row in session.query(Complaint).filter(
            Complaint.case_id == case.id, Complaint.evidence_path.isnot(None)
        ):
            uri = cases.evidence_data_uri(gateway.keys, gateway.settings, row)
            if uri:
                evidence.append(uri)
        decisions = cases.decisions_of(session, case.id)
        actions = cases.actions_of(session, case.id)
        reports, notices = cases.outbox(session)
        context: dict[str, Any] = {
            "case": case,
            "complaints": complaints,
            "evidence": evidence,
            "decisions": decisions,
            "actions": actions,
            "reports": [r for r in reports if r.case_id == case.id],
            "notices": [n for n in notices if n.case_id == case.id],
            "overdue": cases.is_overdue(case),
            "left": cases.workdays_left(gateway.settings, case),
            "current": cases.current_decision(session, case.id),
            "categories": {**TC_A_CATEGORIES, **EXTRA_CATEGORIES},
            "complaint_categories": process.CATEGORIES,
            "suggested": process.CATEGORIES[case.category].risk,
            "sanctions": process.SANCTIONS,
        }
        session.expunge_all()
    return render(request, "console/case.html", viewer, context, error=error, status_code=status_code)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_detail(case_id: str, request: Request, viewer: Viewer = Depends(page("cases.read"))) -> HTMLResponse:
    return _case_page(request, viewer, case_id)


@router.post("/cases/{case_id}/assign", response_class=HTMLResponse)
def assign(
    case_id: str, request: Request, assignee: str = Form(""), viewer: Viewer = Depends(action("cases.decide"))
) -> Response:
    try:
        with get_gateway(request).db.session() as session:
            cases.assign(session, case_id, assignee or viewer.actor, actor=viewer.actor)
    except SynthgateError as exc:
        return _case_page(request, viewer, case_id, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/cases/{case_id}", ok="Assigned.")


@router.post("/cases/{case_id}/link", response_class=HTMLResponse)
def link(
    case_id: str,
    request: Request,
    produce_id: str = Form(""),
    viewer: Viewer = Depends(action("cases.decide")),
) -> Response:
    try:
        with get_gateway(request).db.session() as session:
            cases.link_generation(session, case_id, produce_id, actor=viewer.actor)
    except SynthgateError as exc:
        return _case_page(request, viewer, case_id, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/cases/{case_id}", ok="Linked to the generation.")


def deliver(gateway: Gateway, notice_ids: list[str]) -> list[str]:
    statuses = []
    for notice_id in notice_ids:
        with gateway.db.session() as session:
            statuses.append(cases.deliver_notice(session, gateway.keys, gateway.settings, notice_id).status)
    return statuses


def report(gateway: Gateway, case_id: str, actor: str, note: str = "") -> str:
    """Sequence and sign the case's audit events, queue the report with its bundle, deliver it."""
    jobs.integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        row = cases.authority_report(
            session, gateway.settings, gateway.keys.audit_signing_key, case_id, actor=actor, note=note
        )
        report_id = row.id
    with gateway.db.session() as session:
        return cases.deliver_report(session, gateway.settings, report_id).status


@router.post("/cases/{case_id}/decide", response_class=HTMLResponse)
def decide(
    case_id: str,
    request: Request,
    outcome: str = Form(""),
    ground: str = Form(""),
    category: str = Form(""),
    facts: str = Form(""),
    source: str = Form("complaint"),
    automated_detection: str = Form(""),
    automated_decision: str = Form(""),
    takedown: str = Form(""),
    refutation_title: str = Form(""),
    refutation_body: str = Form(""),
    sanction: str = Form(""),
    restrictions: str = Form(""),
    sanction_until: str = Form(""),
    report_authority: str = Form(""),
    viewer: Viewer = Depends(action("cases.decide")),
) -> Response:
    gateway = get_gateway(request)
    try:
        if report_authority and not viewer.can("cases.report"):
            raise Forbidden("your role may not report to the authority; ask compliance")
        chosen = None
        if sanction:
            chosen = cases.SanctionInput(
                status=sanction,
                restrictions=split_terms(restrictions),
                until=parse_utc(sanction_until, "sanction_until"),
            )
        data = cases.DecisionInput(
            outcome=outcome,
            ground=ground,
            category=category,
            facts=facts.replace("\r\n", "\n"),
            automated_detection=bool(automated_detection),
            automated_decision=bool(automated_decision),
            source=source,
            takedown=bool(takedown),
            refutation_title=refutation_title,
            refutation_body=refutation_body.replace("\r\n", "\n"),
            sanction=chosen,
        )
        with gateway.db.session() as session:
            result = cases.decide(session, gateway.keys, gateway.settings, case_id, data, actor=viewer.actor)
            notice_ids = result.notices
    except SynthgateError as exc:
        return _case_page(request, viewer, case_id, error=exc.message, status_code=exc.status_code)
    statuses = deliver(gateway, notice_ids)
    message = f"Decided: {outcome.replace('_', ' ')}. Notices: {statuses.count('sent')} sent"
    if statuses.count("failed"):
        message += f", {statuses.count('failed')} failed (see the outbox)"
    if report_authority:
        message += f". Report to the authority: {report(gateway, case_id, viewer.actor)}"
    return redirect(request, f"{PREFIX}/cases/{case_id}", ok=message + ".")


@router.post("/cases/{case_id}/report", response_class=HTMLResponse)
def report_case(
    case_id: str, request: Request, note: str = Form(""), viewer: Viewer = Depends(action("cases.report"))
) -> Response:
    try:
        status = report(get_gateway(request), case_id, viewer.actor, note)
    except SynthgateError as exc:
        return _case_page(request, viewer, case_id, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/cases/{case_id}", ok=f"Report to the authority: {status}.")


@router.get("/appeals", response_class=HTMLResponse)
def appeal_queue(
    request: Request, status: str = "open", viewer: Viewer = Depends(page("cases.read"))
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        items = cases.appeals(session, status=status if status != "all" else None)
        session.expunge_all()
    return render(request, "console/appeals.html", viewer, {"items": items, "status": status})


def _appeal_page(
    request: Request, viewer: Viewer, appeal_id: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        with html_errors(viewer):
            appeal = cases.get_appeal(session, appeal_id)
        decisions = cases.decisions_of(session, appeal.case_id)
        appealed = next(d for d in decisions if d.id == appeal.decision_id)
        context = {
            "appeal": appeal,
            "grounds": cases.appeal_grounds(gateway.keys, appeal),
            "appealed": appealed,
            "actions": [a for a in cases.actions_of(session, appeal.case_id) if a.decision_id == appealed.id],
            "answer": next((d for d in decisions if d.appeal_id == appeal.id), None),
            "same_reviewer": appealed.decided_by == viewer.actor,
        }
        session.expunge_all()
    return render(request, "console/appeal.html", viewer, context, error=error, status_code=status_code)


@router.get("/appeals/{appeal_id}", response_class=HTMLResponse)
def appeal_detail(
    appeal_id: str, request: Request, viewer: Viewer = Depends(page("cases.read"))
) -> HTMLResponse:
    return _appeal_page(request, viewer, appeal_id)


@router.post("/appeals/{appeal_id}/decide", response_class=HTMLResponse)
def decide_appeal(
    appeal_id: str,
    request: Request,
    result: str = Form(""),
    reasons: str = Form(""),
    viewer: Viewer = Depends(action("cases.decide")),
) -> Response:
    gateway = get_gateway(request)
    try:
        if result not in ("overturn", "uphold"):
            raise InvalidInput("choose to overturn or uphold the decision", field="result")
        with gateway.db.session() as session:
            outcome = cases.decide_appeal(
                session,
                gateway.keys,
                gateway.settings,
                appeal_id,
                overturn=result == "overturn",
                reasons=reasons.replace("\r\n", "\n"),
                actor=viewer.actor,
            )
            notice_ids = outcome.notices
    except SynthgateError as exc:
        return _appeal_page(request, viewer, appeal_id, error=exc.message, status_code=exc.status_code)
    deliver(gateway, notice_ids)
    done = "overturned: its actions were reverted" if result == "overturn" else "upheld"
    return redirect(request, f"{PREFIX}/appeals/{appeal_id}", ok=f"The decision was {done}.")


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, viewer: Viewer = Depends(page("cases.outbox"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        reports, notices = cases.outbox(session)
        session.expunge_all()
    return render(request, "console/outbox.html", viewer, {"reports": reports, "notices": notices})


@router.post("/outbox/retry", response_class=HTMLResponse)
def retry(request: Request, viewer: Viewer = Depends(action("cases.report"))) -> Response:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        report_ids, notice_ids = cases.pending_deliveries(session)
    delivered = 0
    for report_id in report_ids:
        with gateway.db.session() as session:
            delivered += cases.deliver_report(session, gateway.settings, report_id).status == "delivered"
    sent = deliver(gateway, notice_ids).count("sent")
    return redirect(
        request, f"{PREFIX}/outbox", ok=f"Retried: {delivered} reports delivered, {sent} notices sent."
    )
