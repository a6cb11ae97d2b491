"""End-user accounts: search, verifications, status history, status changes (DSP-9, DSP-10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate.errors import SynthgateError
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.identity import service as identity
from synthgate.identity.models import Account, Verification
from synthgate.operators import service as operators
from synthgate.web.console import queries
from synthgate.web.console.common import (
    PREFIX,
    Viewer,
    action,
    get_gateway,
    html_errors,
    mask,
    mask_name,
    page,
    parse_utc,
    redirect,
    render,
    split_terms,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Methods whose stored subject is an identifier worth showing (masked); a national-identity token is
# an opaque credential and is never shown.
_SHOWN_METHODS = {"phone", "id_number", "uscc"}


@router.get("/accounts", response_class=HTMLResponse)
def search(
    request: Request,
    q: str = "",
    service: str = "",
    status: str = "",
    viewer: Viewer = Depends(page("accounts.read")),
) -> HTMLResponse:
    gateway = get_gateway(request)
    q = q.strip()[:200]
    with gateway.db.session() as session:
        services = governance.list_services(session)
        service_id = next((s.id for s in services if s.slug == service or s.id == service), None)
        status_filter = status if status in identity.STATUSES else None
        if q or service_id or status_filter:
            accounts = identity.search_accounts(
                session, gateway.keys, service_id=service_id, query=q or None, status=status_filter, limit=100
            )
            searched = True
        else:
            accounts = queries.latest_accounts(session, limit=50)
            searched = False
    return render(
        request,
        "console/accounts.html",
        viewer,
        {
            "accounts": accounts,
            "services": services,
            "services_by_id": {s.id: s for s in services},
            "statuses": identity.STATUSES,
            "q": q,
            "service": service,
            "status": status_filter or "",
            "searched": searched,
            "effective_status": identity.effective_status,
        },
    )


@dataclass(frozen=True)
class VerificationRow:
    method: str
    verifier: str
    created_at: Any
    identifier: str | None
    name: str | None


def _verification_rows(gateway: Gateway, rows: list[Verification], reveal: bool) -> list[VerificationRow]:
    out = []
    for v in rows:
        identifier = name = None
        if reveal and v.method in _SHOWN_METHODS:
            identifier = mask(gateway.keys.decrypt(v.subject_enc, v.method))
        if reveal and v.name_enc:
            name = mask_name(gateway.keys.decrypt(v.name_enc, "name"))
        out.append(VerificationRow(v.method, v.verifier, v.created_at, identifier, name))
    return out


def _detail_page(
    request: Request,
    viewer: Viewer,
    account_id: str,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    gateway = get_gateway(request)
    reveal = viewer.can("accounts.identifiers")
    with gateway.db.session() as session:
        with html_errors(viewer):
            account: Account = queries.account(session, account_id)
            service = governance.get_service(session, account.service_id)
        verifications = queries.verifications(session, account)
        rows = _verification_rows(gateway, verifications, reveal)
        history = identity.status_history(session, account)
        if reveal and any(r.identifier or r.name for r in rows):
            # Decrypting personal data is itself a compliance-relevant act, even though only a
            # masked form reaches the screen.
            operators.record_action(
                session,
                viewer.actor,
                "operator.viewed_identifiers",
                subject_type="account",
                subject_id=account.id,
                service_id=account.service_id,
                data={"verifications": len(rows)},
            )
    return render(
        request,
        "console/account.html",
        viewer,
        {
            "account": account,
            "service": service,
            "status": identity.effective_status(account),
            "verifications": rows,
            "reveal": reveal,
            "history": history,
            "statuses": identity.STATUSES,
            "form": form or {},
        },
        error=error,
        status_code=status_code,
    )


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def show(account_id: str, request: Request, viewer: Viewer = Depends(page("accounts.read"))) -> HTMLResponse:
    return _detail_page(request, viewer, account_id)


@router.post("/accounts/{account_id}/status", response_class=HTMLResponse)
def change_status(
    account_id: str,
    request: Request,
    status: str = Form(""),
    reason: str = Form(""),
    expires_at: str = Form(""),
    restrictions: str = Form(""),
    viewer: Viewer = Depends(action("accounts.status")),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            with html_errors(viewer):
                account = queries.account(session, account_id)
            identity.set_status(
                session,
                account,
                status,
                reason=reason,
                operator=viewer.actor,
                expires_at=parse_utc(expires_at, "expires_at"),
                restrictions=split_terms(restrictions) or None,
            )
    except SynthgateError as exc:
        form = {"status": status, "reason": reason, "expires_at": expires_at, "restrictions": restrictions}
        return _detail_page(
            request, viewer, account_id, form=form, error=exc.message, status_code=exc.status_code
        )
    return redirect(request, f"{PREFIX}/accounts/{account_id}", ok=f"Status changed to {status}.")
