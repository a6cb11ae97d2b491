"""What every console router shares: who is asking, what their role may do, CSRF, flash messages, rendering.

Access is decided here and only here: a page declares the permission it needs (``page("accounts.read")``),
a form handler the permission its write needs (``action("accounts.status")``), and the dependencies
answer with a redirect to the login page, a 401/403 page, or the operator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synthgate.errors import InvalidInput, SynthgateError
from synthgate.gateway.sdk import Gateway
from synthgate.operators import service as operators
from synthgate.web.templating import templates

PREFIX = "/console"
SESSION_COOKIE = "sg_console"
LOGIN_CSRF_COOKIE = "sg_login_csrf"
FLASH_COOKIE = "sg_flash"
CSRF_FIELD = "csrf_token"

_ALL = frozenset(operators.ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard": _ALL,
    "services.read": frozenset({"admin", "compliance", "auditor"}),
    "services.write": frozenset({"admin"}),
    "keys.read": frozenset({"admin", "compliance", "auditor"}),
    "keys.write": frozenset({"admin"}),
    "accounts.read": _ALL,
    "accounts.status": frozenset({"admin", "compliance", "reviewer"}),
    # Decrypted (then masked) phone / ID / USCC: only the roles that act on identity disputes.
    "accounts.identifiers": frozenset({"admin", "compliance"}),
    "generations.read": _ALL,
    "rules.read": frozenset({"admin", "compliance", "auditor"}),
    "rules.publish": frozenset({"admin", "compliance"}),
    "audit.read": frozenset({"admin", "compliance", "auditor"}),
    # Verifying changes no record: it sequences pending events and re-checks the signatures, which is
    # exactly the auditor's job, so auditors may run it.
    "audit.verify": frozenset({"admin", "compliance", "auditor"}),
    "operators.read": frozenset({"admin", "compliance", "auditor"}),
    "operators.write": frozenset({"admin"}),
    # Biometric-edit consents (DSP-14): who consented to what, revocations, consent refusals.
    "consent.read": frozenset({"admin", "compliance", "reviewer", "auditor"}),
    "consent.revoke": frozenset({"admin", "compliance"}),
    # Human review (DSP-10): auditors may read the queue and the decisions, only reviewers decide.
    "review.read": frozenset({"admin", "compliance", "reviewer", "auditor"}),
    "review.decide": frozenset({"admin", "compliance", "reviewer"}),
    # Complaints and appeals (DSP-12): reviewers decide, compliance also reports to the authority.
    "cases.read": frozenset({"admin", "compliance", "reviewer", "auditor"}),
    "cases.decide": frozenset({"admin", "compliance", "reviewer"}),
    "cases.report": frozenset({"admin", "compliance"}),
    "cases.outbox": frozenset({"admin", "compliance", "auditor"}),
    # Filings, assessments, DSP-7 records, labeling materials: compliance keeps them, auditors read.
    "governance.read": frozenset({"admin", "compliance", "auditor"}),
    "governance.write": frozenset({"admin", "compliance"}),
    "governance.suspend": frozenset({"admin", "compliance"}),
    "transparency.read": frozenset({"admin", "compliance", "auditor"}),
}

NAV: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/console", "Dashboard"),
    ("services.read", "/console/services", "Services"),
    ("keys.read", "/console/keys", "API keys"),
    ("accounts.read", "/console/accounts", "Accounts"),
    ("generations.read", "/console/generations", "Generations"),
    ("rules.read", "/console/rules", "Rules"),
    ("audit.read", "/console/audit", "Audit log"),
    ("operators.read", "/console/operators", "Operators"),
    ("consent.read", "/console/consent", "Consent"),
    ("review.read", "/console/review", "Review"),
    ("cases.read", "/console/cases", "Cases"),
    ("cases.read", "/console/appeals", "Appeals"),
    ("cases.outbox", "/console/outbox", "Outbox"),
    ("governance.read", "/console/governance", "Governance"),
    ("transparency.read", "/console/transparency", "Transparency"),
)


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


@dataclass(frozen=True)
class Viewer:
    """The logged-in operator, detached from the database session that found them."""

    operator_id: str
    username: str
    role: str
    session_id: str
    csrf: str
    must_change_password: bool
    totp_enabled: bool

    @property
    def actor(self) -> str:
        return f"operator:{self.username}"

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)


# --- failures the console turns into pages (handlers in ``synthgate.web.console``) -----------------


class LoginRequired(Exception):
    """No live session: GET pages redirect to the login page, form posts get 401."""


class PasswordChangeRequired(Exception):
    """The operator must set their own password before anything else."""


class AccessDenied(Exception):
    def __init__(self, message: str, viewer: Viewer | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.viewer = viewer


class CsrfRejected(Exception):
    pass


class PageError(Exception):
    """A domain error on a console page, shown as HTML instead of the API's JSON."""

    def __init__(self, status_code: int, message: str, viewer: Viewer | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.viewer = viewer


@contextmanager
def html_errors(viewer: Viewer | None = None) -> Iterator[None]:
    """Turn domain errors from lookups (an unknown service, account…) into console error pages."""
    try:
        yield
    except SynthgateError as exc:
        raise PageError(exc.status_code, exc.message, viewer) from exc


def not_found(message: str, viewer: Viewer) -> PageError:
    return PageError(404, message, viewer)


# --- dependencies -------------------------------------------------------------------------------


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def current_viewer(request: Request) -> Viewer | None:
    """Sync on purpose: FastAPI runs it in the thread pool, off the event loop, as it hits the database."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with get_gateway(request).db.session() as session:
        resolved = operators.resolve_session(session, token)
        if resolved is None:
            return None
        operator, console_session = resolved
        return Viewer(
            operator_id=operator.id,
            username=operator.username,
            role=operator.role,
            session_id=console_session.id,
            csrf=console_session.csrf_token,
            must_change_password=operator.must_change_password,
            totp_enabled=operators.totp_enabled(operator),
        )


def page(permission: str | None, *, before_password_change: bool = False) -> Callable[..., Viewer]:
    """Dependency for a GET page needing ``permission`` (None: any logged-in operator)."""

    def dependency(viewer: Viewer | None = Depends(current_viewer)) -> Viewer:
        if viewer is None:
            raise LoginRequired()
        if viewer.must_change_password and not before_password_change:
            raise PasswordChangeRequired()
        if permission is not None and not viewer.can(permission):
            raise AccessDenied(f"Your role ({viewer.role}) may not open this page.", viewer)
        return viewer

    return dependency


def action(
    permission: str | None, *, before_password_change: bool = False
) -> Callable[..., Awaitable[Viewer]]:
    """Dependency for a form POST: a live session, then the CSRF token, then the role."""

    async def dependency(request: Request, viewer: Viewer | None = Depends(current_viewer)) -> Viewer:
        if viewer is None:
            raise LoginRequired()
        # The form is parsed once and cached on the request, so route parameters read it again for free.
        form = await request.form()
        submitted = form.get(CSRF_FIELD)
        if not isinstance(submitted, str) or not hmac.compare_digest(
            submitted.encode(), viewer.csrf.encode()
        ):
            raise CsrfRejected()
        if viewer.must_change_password and not before_password_change:
            raise AccessDenied("Set your own password first.", viewer)
        if permission is not None and not viewer.can(permission):
            raise AccessDenied(f"Your role ({viewer.role}) may not do this.", viewer)
        return viewer

    return dependency


# --- flash messages -----------------------------------------------------------------------------


def _flash_mac(gateway: Gateway, payload: str) -> str:
    return gateway.keys.mac("console-flash", payload)


def redirect(
    request: Request, url: str, *, ok: str | None = None, error: str | None = None
) -> RedirectResponse:
    """303 to ``url`` carrying a one-shot message in a signed cookie (so no one can plant messages)."""
    response = RedirectResponse(url, status_code=303)
    message = ("ok", ok) if ok else ("error", error) if error else None
    if message is not None:
        payload = base64.urlsafe_b64encode(json.dumps(message, ensure_ascii=False).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            f"{payload}.{_flash_mac(get_gateway(request), payload)}",
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=get_gateway(request).settings.cookie_secure,
            max_age=120,
        )
    return response


def _read_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    payload, mac = raw.rsplit(".", 1)
    if not hmac.compare_digest(mac, _flash_mac(get_gateway(request), payload)):
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, binascii.Error, TypeError):
        return None
    return (str(kind), str(text))


# --- rendering ----------------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    ok: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """A console page: the template plus the viewer, the CSRF token, the navigation and any message."""
    flashes: list[tuple[str, str]] = []
    stored = _read_flash(request)
    if stored is not None:
        flashes.append(stored)
    if ok:
        flashes.append(("ok", ok))
    if error:
        flashes.append(("error", error))
    nav = [(href, label) for permission, href, label in NAV if viewer is not None and viewer.can(permission)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "csrf_field": CSRF_FIELD,
            "csrf_token": viewer.csrf if viewer else "",
            "nav": nav,
            "flashes": flashes,
            "path": request.url.path,
            **(context or {}),
        },
        status_code=status_code,
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    settings = get_gateway(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)


def login_url(next_path: str | None = None) -> str:
    if next_path and safe_next(next_path) != PREFIX:
        return f"{PREFIX}/login?next={quote(next_path, safe='/')}"
    return f"{PREFIX}/login"


def safe_next(value: str | None) -> str:
    """Only console paths on this host: a login link must never bounce the operator to another site."""
    if not value or not value.startswith(PREFIX) or value.startswith("//") or "\\" in value:
        return PREFIX
    if value.startswith(f"{PREFIX}/login") or value.startswith(f"{PREFIX}/logout"):
        return PREFIX
    return value


# --- small parsers and formatters shared by the pages -------------------------------------------


def parse_utc(value: str, field: str) -> dt.datetime | None:
    """A ``datetime-local`` or ``date`` input, read as UTC (the console shows every time in UTC)."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: not a date/time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)", field=field) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def split_terms(value: str) -> list[str]:
    """One term per line (commas allowed too); blanks and duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for line in value.replace(",", "\n").replace("，", "\n").splitlines():
        term = line.strip()
        if term:
            seen.setdefault(term, None)
    return list(seen)


def mask(value: str) -> str:
    """Keep the first three and last four characters, like ``138****8000``; shorter values are all masked."""
    if value.startswith("+86"):
        value = value[3:]
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    return value[:1] + "*" * max(1, len(value) - 1) if value else ""
