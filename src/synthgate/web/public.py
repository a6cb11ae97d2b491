"""Public pages: the home page and each service's rules and agreement (DSP-8), with its filing (DSP-19)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from synthgate.errors import NotFound
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.rules import service as rules
from synthgate.web.deps import get_gateway
from synthgate.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    with gateway.db.session() as session:
        services = [s for s in governance.list_services(session) if s.active]
    return templates.TemplateResponse(request, "public/home.html", {"services": services})


@router.get("/rules/{slug}", response_class=HTMLResponse)
def rules_page(
    slug: str, request: Request, version: str | None = None, gateway: Gateway = Depends(get_gateway)
) -> HTMLResponse:
    with gateway.db.session() as session:
        service = governance.get_service(session, slug)
        all_versions = rules.versions(session, service)
    if not all_versions:
        raise NotFound("this service has not published any rules")
    shown = next((v for v in all_versions if v.version == version), None) if version else all_versions[0]
    if shown is None:
        raise NotFound(f"no rules version {version!r}")
    return templates.TemplateResponse(
        request,
        "public/rules.html",
        {"service": service, "rules": shown, "versions": all_versions, "current": all_versions[0]},
    )
