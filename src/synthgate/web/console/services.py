"""Services (provider code, filing, upstream, blocked terms) and their API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate.errors import SynthgateError
from synthgate.governance import service as governance
from synthgate.web.console import queries
from synthgate.web.console.common import (
    PREFIX,
    Viewer,
    action,
    get_gateway,
    html_errors,
    page,
    redirect,
    render,
    split_terms,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        services = governance.list_services(session)
        key_counts = queries.key_counts(session)
    return render(
        request,
        "console/services.html",
        viewer,
        {"services": services, "key_counts": key_counts, "form": form or {}, "profiles": governance.PROFILES},
        error=error,
        status_code=status_code,
    )


@router.get("/services", response_class=HTMLResponse)
def list_services(request: Request, viewer: Viewer = Depends(page("services.read"))) -> HTMLResponse:
    return _list_page(request, viewer)


@router.post("/services", response_class=HTMLResponse)
def create_service(
    request: Request,
    slug: str = Form(""),
    name: str = Form(""),
    provider_code: str = Form(""),
    filing_number: str = Form(""),
    filing_link: str = Form(""),
    profile: str = Form("cn"),
    upstream_url: str = Form(""),
    upstream_model: str = Form(""),
    upstream_key: str = Form(""),
    blocked_terms: str = Form(""),
    viewer: Viewer = Depends(action("services.write")),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            service = governance.create_service(
                session,
                gateway.keys,
                slug=slug.strip(),
                name=name,
                provider_code=provider_code,
                actor=viewer.actor,
                filing_number=filing_number.strip() or None,
                filing_link=filing_link.strip() or None,
                profile=profile,
                upstream_url=upstream_url.strip() or None,
                upstream_key=upstream_key or None,
                upstream_model=upstream_model.strip() or None,
                settings={"blocked_terms": split_terms(blocked_terms)},
            )
            created_slug = service.slug
    except SynthgateError as exc:
        # Echo what was typed (never the upstream key) so one typo does not cost the whole form.
        form = {
            "slug": slug,
            "name": name,
            "provider_code": provider_code,
            "filing_number": filing_number,
            "filing_link": filing_link,
            "profile": profile,
            "upstream_url": upstream_url,
            "upstream_model": upstream_model,
            "blocked_terms": blocked_terms,
        }
        return _list_page(request, viewer, form=form, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/services/{created_slug}", ok=f"Service {created_slug} created.")


def _detail_page(
    request: Request,
    viewer: Viewer,
    slug: str,
    *,
    issued_secret: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            service = governance.get_service(session, slug)
        keys = governance.list_api_keys(session, service)
    return render(
        request,
        "console/service.html",
        viewer,
        {
            "service": service,
            "keys": keys,
            "scopes": governance.SCOPES,
            "issued_secret": issued_secret,
            "blocked_terms": service.settings.get("blocked_terms", []),
        },
        error=error,
        status_code=status_code,
    )


@router.get("/services/{slug}", response_class=HTMLResponse)
def show_service(
    slug: str, request: Request, viewer: Viewer = Depends(page("services.read"))
) -> HTMLResponse:
    return _detail_page(request, viewer, slug)


@router.post("/services/{slug}/blocked-terms", response_class=HTMLResponse)
def edit_blocked_terms(
    slug: str,
    request: Request,
    blocked_terms: str = Form(""),
    viewer: Viewer = Depends(action("services.write")),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            with html_errors(viewer):
                service = governance.get_service(session, slug)
            terms = split_terms(blocked_terms)
            governance.update_service_settings(session, service, {"blocked_terms": terms}, actor=viewer.actor)
    except SynthgateError as exc:
        return _detail_page(request, viewer, slug, error=exc.message, status_code=exc.status_code)
    return redirect(request, f"{PREFIX}/services/{slug}", ok=f"Blocked terms saved ({len(terms)}).")


@router.post("/services/{slug}/keys", response_class=HTMLResponse)
def create_key(
    slug: str,
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form([]),
    viewer: Viewer = Depends(action("keys.write")),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            with html_errors(viewer):
                service = governance.get_service(session, slug)
            issued = governance.create_api_key(
                session, service, actor=viewer.actor, name=name.strip(), scopes=scopes or None
            )
    except SynthgateError as exc:
        return _detail_page(request, viewer, slug, error=exc.message, status_code=exc.status_code)
    # Rendered straight from the POST, not redirected: the secret exists only in this response.
    return _detail_page(request, viewer, slug, issued_secret=issued.secret)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(key_id: str, request: Request, viewer: Viewer = Depends(action("keys.write"))) -> Response:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        with html_errors(viewer):
            key = governance.revoke_api_key(session, key_id, actor=viewer.actor)
        services = queries.services_by_id(session)
    slug = services[key.service_id].slug
    return redirect(request, f"{PREFIX}/services/{slug}", ok=f"Key {key.prefix}… revoked.")


@router.get("/keys", response_class=HTMLResponse)
def list_keys(request: Request, viewer: Viewer = Depends(page("keys.read"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        keys = governance.list_api_keys(session)
        services = queries.services_by_id(session)
    return render(request, "console/keys.html", viewer, {"keys": keys, "services": services})
