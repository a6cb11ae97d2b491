"""The landing page: counts that tell an operator where work is waiting."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from synthgate.web.console import queries
from synthgate.web.console.common import PREFIX, Viewer, get_gateway, page, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, viewer: Viewer = Depends(page("dashboard"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        counts = queries.counts(session)
    return render(request, "console/dashboard.html", viewer, {"counts": counts})
