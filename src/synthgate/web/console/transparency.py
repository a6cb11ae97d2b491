"""The transparency dashboard: a period's figures with charts (inline SVG) and exports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from synthgate.audit import service as audit
from synthgate.errors import InvalidInput
from synthgate.governance import transparency
from synthgate.web.console.common import PREFIX, Viewer, get_gateway, html_errors, page, render

router = APIRouter(prefix=PREFIX + "/transparency", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def dashboard(
    request: Request,
    start: str | None = None,
    end: str | None = None,
    viewer: Viewer = Depends(page("transparency.read")),
) -> HTMLResponse:
    with html_errors(viewer):
        first, last = transparency.parse_period(start, end)
    with get_gateway(request).db.session() as session:
        figures = transparency.compute(session, first, last)
    charts = {k: Markup(v) for k, v in transparency.charts(figures).items()}
    return render(
        request,
        "console/transparency.html",
        viewer,
        {
            "figures": figures,
            "rows": list(figures.rows()),
            "charts": charts,
            "titles": transparency.SECTION_TITLES,
            "query": f"start={figures.start.isoformat()}&end={figures.end.isoformat()}",
        },
    )


@router.get("/export.{fmt}")
def export(
    fmt: str,
    request: Request,
    start: str | None = None,
    end: str | None = None,
    viewer: Viewer = Depends(page("transparency.read")),
) -> Response:
    with html_errors(viewer):
        first, last = transparency.parse_period(start, end)
        if fmt not in ("csv", "json", "pdf"):
            raise InvalidInput("format must be csv, json or pdf", field="format")
    with get_gateway(request).db.session() as session:
        figures = transparency.compute(session, first, last)
        data, media_type = transparency.render(figures, fmt)
        # An export leaves the system: who took which period, in which form, is on the record.
        audit.record(
            session,
            "transparency.exported",
            actor=viewer.actor,
            subject_type="transparency",
            subject_id=f"{first.isoformat()}..{last.isoformat()}",
            data={"format": fmt, "start": first.isoformat(), "end": last.isoformat()},
        )
    filename = f"synthgate-transparency-{first.isoformat()}-{last.isoformat()}.{fmt}"
    return Response(
        data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
