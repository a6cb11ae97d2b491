"""The public transparency page: the filed algorithms with their filing numbers, public-notice links
and published content (DSP-19, ALG-24), and the month's figures with charts and downloads.

Anyone may read it, so it offers whole calendar months only and keeps each month's figures for a
minute per worker: a crawler cannot make it scan arbitrary spans of the generation records.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from synthgate.db import utcnow
from synthgate.errors import InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance import transparency
from synthgate.web.deps import get_gateway
from synthgate.web.templating import templates

router = APIRouter(include_in_schema=False)
CACHE_SECONDS = 60.0
# Per gateway (one per process in production; tests make many over one database URL).
# Each entry: when computed, the figures, and the exports rendered from them (a PDF costs CPU).
_Entry = tuple[float, transparency.Figures, dict[str, tuple[bytes, str]]]
_cache: weakref.WeakKeyDictionary[Gateway, dict[str, _Entry]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def month_bounds(month: str | None) -> tuple[str, dt.date, dt.date]:
    today = utcnow().date()
    if not month:
        month = f"{today.year:04d}-{today.month:02d}"
    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError as exc:
        raise InvalidInput("month is YYYY-MM", field="month") from exc
    if first > today or first.year < 2000:
        raise InvalidInput("no figures for that month", field="month")
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return month, first, min(following - dt.timedelta(days=1), today)


def _entry(gateway: Gateway, month: str | None) -> _Entry:
    name, start, end = month_bounds(month)
    with _cache_lock:
        cached = _cache.get(gateway, {}).get(name)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS and cached[1].end == end:
        return cached
    with gateway.db.session() as session:
        figures = transparency.compute(session, start, end)
    entry: _Entry = (time.monotonic(), figures, {})
    with _cache_lock:
        _cache.setdefault(gateway, {})[name] = entry
    return entry


def month_figures(gateway: Gateway, month: str | None) -> transparency.Figures:
    return _entry(gateway, month)[1]


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(
    request: Request, month: str | None = None, gateway: Gateway = Depends(get_gateway)
) -> HTMLResponse:
    figures = month_figures(gateway, month)
    with gateway.db.session() as session:
        algorithms = [a for a in governance.list_algorithms(session) if a.status == "filed"]
        services = [s for s in governance.list_services(session) if s.active]
    return templates.TemplateResponse(
        request,
        "public/transparency.html",
        {
            "figures": figures,
            "rows": list(figures.rows()),
            "month": f"{figures.start.year:04d}-{figures.start.month:02d}",
            "charts": {k: Markup(v) for k, v in transparency.charts(figures).items()},
            "titles": transparency.SECTION_TITLES,
            "algorithms": algorithms,
            "services": services,
            "algorithm_types": governance.ALGORITHM_TYPES,
        },
    )


@router.get("/transparency/export.{fmt}")
def transparency_export(
    fmt: str, month: str | None = None, gateway: Gateway = Depends(get_gateway)
) -> Response:
    _, figures, exports = _entry(gateway, month)
    if fmt not in exports:
        exports[fmt] = transparency.render(figures, fmt)
    data, media_type = exports[fmt]
    filename = f"synthgate-transparency-{figures.start.isoformat()}-{figures.end.isoformat()}.{fmt}"
    return Response(
        data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
