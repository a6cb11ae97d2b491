"""The operator console under ``/console``: thin routers over the domain services, HTML pages.

``mount_console`` adds the routers, turns the console's access failures into pages (a redirect to
the login page, 401, 403) and sets strict browser headers on every console response.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthgate.web.console.common import (
    PREFIX,
    AccessDenied,
    CsrfRejected,
    LoginRequired,
    PageError,
    PasswordChangeRequired,
    clear_session_cookie,
    login_url,
    render,
)

# Inline styles come from base.html; no console page runs a script, so none is allowed at all.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show personal data and one-time secrets: never keep them in a browser or proxy cache.
    "Cache-Control": "no-store",
}


def mount_console(app: FastAPI) -> None:
    from synthgate.web.console import (
        accounts,
        audit_log,
        auth,
        dashboard,
        generations,
        operators,
        review,
        rules,
        services,
    )

    for module in (auth, dashboard, services, accounts, generations, rules, audit_log, operators, review):
        app.include_router(module.router)
    from synthgate.web.console import consent as consent_pages
    from synthgate.web.console import governance, transparency

    app.include_router(governance.router)
    app.include_router(transparency.router)
    app.include_router(consent_pages.router)
    from synthgate.web.console import cases as case_pages

    app.include_router(case_pages.router)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            response: Response = RedirectResponse(login_url(request.url.path), status_code=303)
        else:
            response = render(
                request,
                "console/error.html",
                None,
                {"title": "Not logged in", "message": "Your session has ended. Log in again and resubmit."},
                status_code=401,
            )
        # A stale cookie would otherwise be sent, and rejected, on every request.
        clear_session_cookie(response)
        return response

    @app.exception_handler(PasswordChangeRequired)
    async def password_change_required(request: Request, exc: PasswordChangeRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/password", status_code=303)

    @app.exception_handler(AccessDenied)
    async def access_denied(request: Request, exc: AccessDenied) -> HTMLResponse:
        return render(
            request,
            "console/error.html",
            exc.viewer,
            {"title": "Not allowed", "message": exc.message},
            status_code=403,
        )

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> HTMLResponse:
        return render(
            request,
            "console/error.html",
            None,
            {
                "title": "Form expired",
                "message": "This form was not sent from a current console page (CSRF check failed). "
                "Go back, reload the page and try again.",
            },
            status_code=403,
        )

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        titles = {404: "Not found", 409: "Conflict", 422: "Invalid input"}
        return render(
            request,
            "console/error.html",
            exc.viewer,
            {"title": titles.get(exc.status_code, "Error"), "message": exc.message},
            status_code=exc.status_code,
        )

    app.add_middleware(ConsoleHeadersMiddleware)


class ConsoleHeadersMiddleware:
    """Security headers on console pages. Plain ASGI, and a pass-through for every other path:
    ``@app.middleware("http")`` (``BaseHTTPMiddleware``) put a task and a stream copy on every API
    request, console or not (it showed in a profile of the proxy's hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
