"""Console operators (admin): list, create with a role, unlock, (de)activate, reset password or TOTP."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from synthgate.errors import SynthgateError
from synthgate.operators import service as operators
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


def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    issued: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    gateway = get_gateway(request)
    with gateway.db.session() as session:
        listed = operators.list_operators(session)
    rows = [
        {
            "operator": o,
            "locked": operators.is_locked(o, gateway.settings),
            "totp": operators.totp_enabled(o),
        }
        for o in listed
    ]
    return render(
        request,
        "console/operators.html",
        viewer,
        {"rows": rows, "roles": operators.ROLES, "issued": issued, "form": form or {}},
        error=error,
        status_code=status_code,
    )


@router.get("/operators", response_class=HTMLResponse)
def list_operators(request: Request, viewer: Viewer = Depends(page("operators.read"))) -> HTMLResponse:
    return _list_page(request, viewer)


@router.post("/operators", response_class=HTMLResponse)
def create_operator(
    request: Request,
    username: str = Form(""),
    role: str = Form(""),
    viewer: Viewer = Depends(action("operators.write")),
) -> Response:
    try:
        with get_gateway(request).db.session() as session:
            operator, password = operators.create_operator(
                session, username=username, role=role, actor=viewer.actor, must_change_password=True
            )
            created = operator.username
    except SynthgateError as exc:
        return _list_page(
            request,
            viewer,
            form={"username": username, "role": role},
            error=exc.message,
            status_code=exc.status_code,
        )
    # Shown from this response only; the password is not stored anywhere in clear.
    return _list_page(request, viewer, issued=(created, password))


@router.post("/operators/{operator_id}/unlock", response_class=HTMLResponse)
def unlock(
    operator_id: str, request: Request, viewer: Viewer = Depends(action("operators.write"))
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        operator = operators.get_operator(session, operator_id)
        operators.unlock(session, operator, actor=viewer.actor)
        name = operator.username
    return redirect(request, f"{PREFIX}/operators", ok=f"{name} can log in again.")


@router.post("/operators/{operator_id}/active", response_class=HTMLResponse)
def set_active(
    operator_id: str,
    request: Request,
    active: str = Form(""),
    viewer: Viewer = Depends(action("operators.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        operator = operators.get_operator(session, operator_id)
        operators.set_active(session, operator, active == "1", actor=viewer.actor)
        name = operator.username
    state = "activated" if active == "1" else "deactivated; their sessions were ended"
    return redirect(request, f"{PREFIX}/operators", ok=f"{name} {state}.")


@router.post("/operators/{operator_id}/reset-password", response_class=HTMLResponse)
def reset_password(
    operator_id: str, request: Request, viewer: Viewer = Depends(action("operators.write"))
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        operator = operators.get_operator(session, operator_id)
        password = operators.reset_password(session, operator, actor=viewer.actor)
        name = operator.username
    return _list_page(request, viewer, issued=(name, password))


@router.post("/operators/{operator_id}/reset-totp", response_class=HTMLResponse)
def reset_totp(
    operator_id: str, request: Request, viewer: Viewer = Depends(action("operators.write"))
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        operator = operators.get_operator(session, operator_id)
        operators.disable_totp(session, operator, actor=viewer.actor)
        name = operator.username
    return redirect(
        request, f"{PREFIX}/operators", ok=f"Two-step login removed for {name}; they can enrol again."
    )
