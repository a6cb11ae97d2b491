"""Generation records: list with filters, and one record with its digests, labels and verdicts."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from synthgate.errors import SynthgateError
from synthgate.governance import service as governance
from synthgate.web.console import queries
from synthgate.web.console.common import PREFIX, Viewer, get_gateway, html_errors, page, parse_utc, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 100


@router.get("/generations", response_class=HTMLResponse)
def list_generations(
    request: Request,
    service: str = "",
    account: str = "",
    date_from: str = "",
    date_to: str = "",
    offset: int = 0,
    viewer: Viewer = Depends(page("generations.read")),
) -> HTMLResponse:
    error = None
    since = until = None
    try:
        since = parse_utc(date_from, "date_from")
        until = parse_utc(date_to, "date_to")
    except SynthgateError as exc:
        error = exc.message
    if until is not None and len(date_to.strip()) == 10:
        # A bare date as the upper bound means "through the end of that day".
        until += dt.timedelta(days=1)
    offset = max(0, offset)
    with get_gateway(request).db.session() as session:
        services = governance.list_services(session)
        service_id = next((s.id for s in services if s.slug == service or s.id == service), None)
        rows = queries.generations(
            session,
            service_id=service_id,
            account_id=account.strip() or None,
            since=since,
            until=until,
            limit=PAGE_SIZE + 1,
            offset=offset,
        )
        accounts = queries.accounts_by_id(session, {g.account_id for g in rows})
    return render(
        request,
        "console/generations.html",
        viewer,
        {
            "generations": rows[:PAGE_SIZE],
            "more": len(rows) > PAGE_SIZE,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "services": services,
            "services_by_id": {s.id: s for s in services},
            "accounts_by_id": accounts,
            "filters": {"service": service, "account": account, "date_from": date_from, "date_to": date_to},
        },
        error=error,
        status_code=422 if error else 200,
    )


@router.get("/generations/{produce_id}", response_class=HTMLResponse)
def show_generation(
    produce_id: str, request: Request, viewer: Viewer = Depends(page("generations.read"))
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            generation = queries.generation(session, produce_id)
            service = governance.get_service(session, generation.service_id)
            account = queries.account(session, generation.account_id)
        events = (
            queries.audit_events(session, subject_id=produce_id, limit=100)
            if viewer.can("audit.read")
            else []
        )
    return render(
        request,
        "console/generation.html",
        viewer,
        {
            "generation": generation,
            "service": service,
            "account": account,
            "labels_json": json.dumps(generation.labels, ensure_ascii=False, indent=2, sort_keys=True),
            "verdicts_json": json.dumps(generation.verdicts, ensure_ascii=False, indent=2, sort_keys=True),
            "events": list(reversed(events)),
        },
    )
