"""Platform rules and service agreement versions per service (DSP-8); publishing a new version."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate.errors import SynthgateError
from synthgate.governance import service as governance
from synthgate.rules import service as rules
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


@router.get("/rules", response_class=HTMLResponse)
def overview(request: Request, viewer: Viewer = Depends(page("rules.read"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        services = governance.list_services(session)
        versions = {s.id: rules.versions(session, s) for s in services}
    return render(request, "console/rules.html", viewer, {"services": services, "versions": versions})


def _service_page(
    request: Request,
    viewer: Viewer,
    slug: str,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            service = governance.get_service(session, slug)
        versions = rules.versions(session, service)
    if form is None:
        # Start the next version from the current text: most revisions change a few clauses.
        latest = versions[0] if versions else None
        form = {"version": "", "title": latest.title if latest else "", "body": latest.body if latest else ""}
    return render(
        request,
        "console/rules_service.html",
        viewer,
        {"service": service, "versions": versions, "form": form},
        error=error,
        status_code=status_code,
    )


@router.get("/rules/{slug}", response_class=HTMLResponse)
def service_rules(slug: str, request: Request, viewer: Viewer = Depends(page("rules.read"))) -> HTMLResponse:
    return _service_page(request, viewer, slug)


@router.post("/rules/{slug}", response_class=HTMLResponse)
def publish(
    slug: str,
    request: Request,
    version: str = Form(""),
    title: str = Form(""),
    body: str = Form(""),
    viewer: Viewer = Depends(action("rules.publish")),
) -> Response:
    gateway = get_gateway(request)
    # Browsers send CRLF in textareas; normalise so the published digest matches the text people read.
    body = body.replace("\r\n", "\n")
    try:
        with gateway.db.session() as session:
            with html_errors(viewer):
                service = governance.get_service(session, slug)
            published = rules.publish(
                session, service, version=version.strip(), title=title, body=body, actor=viewer.actor
            )
            label = published.version
    except SynthgateError as exc:
        form = {"version": version, "title": title, "body": body}
        return _service_page(request, viewer, slug, form=form, error=exc.message, status_code=exc.status_code)
    return redirect(
        request,
        f"{PREFIX}/rules/{slug}",
        ok=f"Version {label} published. Every account must accept it before its next generation.",
    )
