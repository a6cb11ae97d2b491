"""Login, logout, the operator's own password and TOTP."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synthgate.errors import InvalidInput, SynthgateError
from synthgate.operators import service as operators
from synthgate.web.console.common import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    Viewer,
    action,
    clear_session_cookie,
    current_viewer,
    get_gateway,
    page,
    redirect,
    render,
    safe_next,
    set_session_cookie,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _login_page(
    request: Request, next_path: str, *, error: str | None = None, username: str = "", status_code: int = 200
) -> HTMLResponse:
    # Login CSRF (someone logging your browser into *their* operator account) is stopped with a
    # double-submit token: a random cookie that the form must echo back.
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "console/login.html",
        None,
        {"login_token": token, "next": next_path, "username": username},
        error=error,
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=get_gateway(request).settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "", viewer: Viewer | None = Depends(current_viewer)) -> Response:
    if viewer is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    totp_code: str = Form(""),
    login_token: str = Form(""),
    next: str = Form(""),
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), login_token.encode()):
        return _login_page(
            request,
            safe_next(next),
            error="The login form expired. Please try again.",
            username=username,
            status_code=403,
        )
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        outcome = operators.login(
            session, gateway.keys, gateway.settings, username=username, password=password, totp_code=totp_code
        )
        must_change = bool(outcome.operator and outcome.operator.must_change_password)
    if not outcome.ok or outcome.token is None:
        return _login_page(
            request,
            safe_next(next),
            error=outcome.message,
            username=username,
            status_code=401 if outcome.reason != "locked" else 403,
        )
    target = f"{PREFIX}/password" if must_change else safe_next(next)
    response = redirect(request, target, ok="Password change required." if must_change else None)
    set_session_cookie(response, request, outcome.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
def logout(request: Request, viewer: Viewer = Depends(action(None, before_password_change=True))) -> Response:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        operators.logout(session, request.cookies.get(SESSION_COOKIE))
    response = redirect(request, f"{PREFIX}/login", ok="You are logged out.")
    clear_session_cookie(response)
    return response


# --- own password ---------------------------------------------------------------------------------


@router.get("/password", response_class=HTMLResponse)
def password_form(
    request: Request, viewer: Viewer = Depends(page(None, before_password_change=True))
) -> Response:
    return render(request, "console/password.html", viewer, {"min_length": operators.MIN_PASSWORD_LENGTH})


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    current_password: str = Form(""),
    new_password: str = Form(""),
    confirm_password: str = Form(""),
    viewer: Viewer = Depends(action(None, before_password_change=True)),
) -> Response:
    gateway = get_gateway(request)
    try:
        if new_password != confirm_password:
            raise InvalidInput("the two new passwords differ", field="confirm_password")
        with gateway.db.session() as session:
            operator = operators.get_operator(session, viewer.operator_id)
            operators.change_password(
                session,
                operator,
                current=current_password,
                new=new_password,
                keep_session_id=viewer.session_id,
            )
    except SynthgateError as exc:
        return render(
            request,
            "console/password.html",
            viewer,
            {"min_length": operators.MIN_PASSWORD_LENGTH},
            error=exc.message,
            status_code=422,
        )
    return redirect(request, PREFIX, ok="Your password was changed. Other sessions were logged out.")


# --- own TOTP -------------------------------------------------------------------------------------


@router.get("/totp", response_class=HTMLResponse)
def totp_page(request: Request, viewer: Viewer = Depends(page(None))) -> Response:
    gateway = get_gateway(request)
    enrolment = None
    if not viewer.totp_enabled:
        with gateway.db.session() as session:
            operator = operators.get_operator(session, viewer.operator_id)
            enrolment = operators.begin_totp_enrolment(gateway.keys, operator)
    return render(request, "console/totp.html", viewer, {"enrolment": enrolment})


@router.post("/totp/enable", response_class=HTMLResponse)
def totp_enable(
    request: Request,
    pending: str = Form(""),
    code: str = Form(""),
    viewer: Viewer = Depends(action(None)),
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            operator = operators.get_operator(session, viewer.operator_id)
            operators.enable_totp(session, gateway.keys, operator, pending=pending, code=code)
    except SynthgateError as exc:
        with gateway.db.session() as session:
            operator = operators.get_operator(session, viewer.operator_id)
            try:
                enrolment = operators.resume_totp_enrolment(gateway.keys, operator, pending)
            except SynthgateError:
                enrolment = operators.begin_totp_enrolment(gateway.keys, operator)
        return render(
            request, "console/totp.html", viewer, {"enrolment": enrolment}, error=exc.message, status_code=422
        )
    return redirect(
        request, f"{PREFIX}/totp", ok="Two-step login is on. You will need a code at every login."
    )


@router.post("/totp/disable", response_class=HTMLResponse)
def totp_disable(
    request: Request, password: str = Form(""), viewer: Viewer = Depends(action(None))
) -> Response:
    gateway = get_gateway(request)
    try:
        with gateway.db.session() as session:
            operator = operators.get_operator(session, viewer.operator_id)
            operators.disable_totp(session, operator, actor=viewer.actor, password=password)
    except SynthgateError as exc:
        return redirect(request, f"{PREFIX}/totp", error=exc.message)
    return redirect(request, f"{PREFIX}/totp", ok="Two-step login is off.")
