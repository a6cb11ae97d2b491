"""Public pages: the complaint form and its acknowledgement, the status page of a tracking number,
the appeal form of a decision notice, and the refutations (DSP-11) with their Atom / RSS feeds.

Pages run no script, so the web form's spam defence is a signed time token (a person takes a
few seconds to fill it in) plus a hidden honeypot field, both checked by ``cases.service``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synthgate.cases import process
from synthgate.cases import service as cases
from synthgate.cases.api import _read_complaint, client_address, receive
from synthgate.errors import NotFound, SynthgateError
from synthgate.gateway.sdk import Gateway
from synthgate.web.deps import get_gateway
from synthgate.web.templating import templates

router = APIRouter(include_in_schema=False)
_HEADERS = {
    # The tracking number is in the URL of the status page: keep it out of caches and referrers.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(_HEADERS)
    return response


def _form(
    request: Request,
    gateway: Gateway,
    *,
    error: str | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    return _page(
        request,
        "public/complaint_form.html",
        {
            "token": cases.issue_challenge(gateway.keys),
            "process": process.published_process(gateway.settings),
            "categories": process.CATEGORIES,
            "error": error,
            "values": values or {},
        },
        status_code,
    )


@router.get("/complaints", response_class=HTMLResponse)
def complaint_form(request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    return _form(request, gateway)


@router.post("/complaints", response_class=HTMLResponse)
async def complaint_submit(request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    try:
        item, token, _, honeypot = await _read_complaint(request)
        receipt = await run_in_threadpool(
            receive, gateway, item, token, channel="web", client=client_address(request), honeypot=honeypot
        )
    except SynthgateError as exc:
        form = await request.form()
        kept = {
            k: v
            for k, v in form.items()
            if isinstance(v, str) and k in ("category", "description", "contact", "content_url", "produce_id")
        }
        return _form(request, gateway, error=exc.message, status_code=exc.status_code, values=kept)
    return _page(request, "public/complaint_ack.html", {"receipt": receipt, "process": receipt.process})


@router.get("/complaints/status", response_class=HTMLResponse)
def status_lookup(request: Request, tracking: str = "", gateway: Gateway = Depends(get_gateway)) -> Response:
    if tracking.strip():
        return RedirectResponse(
            f"/complaints/status/{cases.normalise_tracking(tracking)[:64]}", status_code=303
        )
    return _page(request, "public/complaint_status.html", {"status": None, "tracking": ""})


@router.get("/complaints/status/{tracking}", response_class=HTMLResponse)
def status_page(tracking: str, request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    with gateway.db.session() as session:
        try:
            status = cases.status_for(session, gateway.keys, tracking[:64])
        except NotFound:
            return _page(
                request,
                "public/complaint_status.html",
                {"status": None, "tracking": tracking[:64], "unknown": True},
                404,
            )
    return _page(request, "public/complaint_status.html", {"status": status, "tracking": tracking[:64]})


@router.get("/appeals/{decision_id}", response_class=HTMLResponse)
def appeal_form(decision_id: str, request: Request, token: str = "") -> HTMLResponse:
    return _page(request, "public/appeal.html", {"decision_id": decision_id[:64], "token": token[:100]})


@router.post("/appeals/{decision_id}", response_class=HTMLResponse)
def appeal_submit(
    decision_id: str,
    request: Request,
    token: str = Form(""),
    grounds: str = Form(""),
    gateway: Gateway = Depends(get_gateway),
) -> HTMLResponse:
    try:
        with gateway.db.session() as session:
            appeal = cases.file_appeal(
                session, gateway.keys, gateway.settings, decision_id[:64], grounds, token=token[:100]
            )
            due = appeal.due_at
    except SynthgateError as exc:
        return _page(
            request,
            "public/appeal.html",
            {"decision_id": decision_id[:64], "token": token[:100], "error": exc.message, "grounds": grounds},
            exc.status_code,
        )
    return _page(request, "public/appeal.html", {"decision_id": decision_id[:64], "filed": True, "due": due})


@router.get("/refutations", response_class=HTMLResponse)
def refutation_list(request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    with gateway.db.session() as session:
        items = cases.refutations(session)
        session.expunge_all()
    return _page(request, "public/refutations.html", {"items": items, "refutation": None})


@router.get("/refutations/feed.atom")
def refutation_atom(gateway: Gateway = Depends(get_gateway)) -> Response:
    with gateway.db.session() as session:
        body = cases.feed(gateway.settings, cases.refutations(session), "atom")
    return Response(body, media_type="application/atom+xml")


@router.get("/refutations/feed.rss")
def refutation_rss(gateway: Gateway = Depends(get_gateway)) -> Response:
    with gateway.db.session() as session:
        body = cases.feed(gateway.settings, cases.refutations(session), "rss")
    return Response(body, media_type="application/rss+xml")


@router.get("/refutations/{refutation_id}", response_class=HTMLResponse)
def refutation_page(
    refutation_id: str, request: Request, gateway: Gateway = Depends(get_gateway)
) -> HTMLResponse:
    with gateway.db.session() as session:
        ref = cases.get_refutation(session, refutation_id)
        session.expunge(ref)
    return _page(request, "public/refutations.html", {"items": [], "refutation": ref})
