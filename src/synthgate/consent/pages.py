"""The subject's own channel: the public consent page behind the link sent to them (DSP-14).

The link's secret identifies the request; the subject then proves they hold the mobile number
the link went to (phone OTP, identity domain), which leaves a mark in this browser that the answer
must carry. Revocation needs only the link: withdrawing must stay as easy as it can be.
Handlers are plain functions, so face and voice analysis runs in the thread pool, off the event loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synthgate.consent import service as consent
from synthgate.consent import texts
from synthgate.consent.models import ConsentRequest
from synthgate.errors import InvalidInput, SynthgateError
from synthgate.gateway.sdk import Gateway
from synthgate.governance.models import Service
from synthgate.media.limits import MediaLimits
from synthgate.web.deps import get_gateway
from synthgate.web.templating import templates

router = APIRouter(prefix="/consent", include_in_schema=False)

COOKIE = "sg_consent"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the link's secret is in the path
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _page(
    request: Request, gateway: Gateway, token: str, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    with gateway.db.session() as session:
        found = consent.request_by_token(session, gateway.keys, token)
        service = session.get(Service, found.service_id)
        assert service is not None
        record = consent.consent_for_request(session, found)
        text = texts.current()
        context = {
            "token": token,
            "req": consent.request_summary(found),
            "service": {"name": service.name, "slug": service.slug},
            "purpose": found.purpose,
            "requested_by": found.requested_by,
            "verified": _has_mark(request, gateway, found),
            "consent": None
            if record is None
            else {
                "id": record.id,
                "status": record.status,
                "operations": list(record.operations),
                "expires_at": record.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                "text_version": record.text_version,
                "text_sha256": record.text_sha256,
            },
            "text": texts.render(text, service=service.name, operations=list(found.operations)),
            "text_version": text.version,
            "default_until": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
            **extra,
        }
    response = templates.TemplateResponse(request, "public/consent.html", context, status_code=status_code)
    response.headers.update(_HEADERS)
    return response


def _has_mark(request: Request, gateway: Gateway, found: ConsentRequest) -> bool:
    try:
        consent.ensure_verified(gateway.keys, found, request.cookies.get(COOKIE))
    except SynthgateError:
        return False
    return True


def _back(token: str, note: str = "") -> RedirectResponse:
    response = RedirectResponse(f"/consent/{token}" + (f"?note={note}" if note else ""), status_code=303)
    response.headers.update(_HEADERS)
    return response


@router.get("/{token}", response_class=HTMLResponse)
def show(token: str, request: Request, note: str = "", gateway: Gateway = Depends(get_gateway)) -> Response:
    try:
        return _page(request, gateway, token, note=note[:40])
    except SynthgateError as exc:
        return _gone(request, exc)


def _gone(request: Request, exc: SynthgateError) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, "public/consent.html", {"fatal": exc.message}, status_code=exc.status_code
    )
    response.headers.update(_HEADERS)
    return response


def _act(request: Request, gateway: Gateway, token: str, work: Any) -> Response:
    """Run ``work(session, found)``; a domain error re-renders the page with the message (no JSON)."""
    try:
        with gateway.db.session() as session:
            found = consent.request_by_token(session, gateway.keys, token)
            result: Response | None = work(session, found)
    except SynthgateError as exc:
        try:
            return _page(request, gateway, token, status_code=exc.status_code, error=exc.message)
        except SynthgateError:
            return _gone(request, exc)
    return result or _back(token)


@router.post("/{token}/code")
def send_code(token: str, request: Request, gateway: Gateway = Depends(get_gateway)) -> Response:
    def work(session: Any, found: ConsentRequest) -> Response:
        consent.send_code(session, gateway.keys, gateway.settings, gateway.sms_sender, found)
        return _back(token, "code_sent")

    return _act(request, gateway, token, work)


@router.post("/{token}/verify")
def verify(
    token: str, request: Request, code: str = Form(""), gateway: Gateway = Depends(get_gateway)
) -> Response:
    outcome_box: dict[str, Any] = {}

    def work(session: Any, found: ConsentRequest) -> Response | None:
        outcome = consent.confirm_code(session, gateway.keys, gateway.settings, found, code[:20])
        outcome_box["outcome"] = outcome
        if outcome.ok:
            outcome_box["mark"] = consent.verification_mark(gateway.keys, found)
        return None

    response = _act(request, gateway, token, work)
    outcome = outcome_box.get("outcome")
    if outcome is None:
        return response
    if not outcome.ok:
        return _page(
            request, gateway, token, status_code=422, error=f"The code was not accepted: {outcome.reason}."
        )
    response = _back(token, "verified")
    response.set_cookie(
        COOKIE,
        outcome_box["mark"],
        path=f"/consent/{token}",
        httponly=True,
        samesite="strict",
        secure=gateway.settings.cookie_secure,
        max_age=consent.VERIFICATION_FRESH_MINUTES * 60,
    )
    return response


def _read(upload: UploadFile | None, limit: int) -> bytes | None:
    if upload is None or not upload.filename:
        return None
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"the file is larger than {limit} bytes")
    return data or None


@router.post("/{token}/grant")
def grant(
    token: str,
    request: Request,
    operations: list[str] = Form(default=[]),
    until: str = Form(""),
    text_version: str = Form(""),
    agree: str = Form(""),
    photo: UploadFile | None = File(None),
    voice: UploadFile | None = File(None),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    settings = gateway.settings
    limits = MediaLimits.from_settings(settings)

    def work(session: Any, found: ConsentRequest) -> Response:
        consent.ensure_verified(gateway.keys, found, request.cookies.get(COOKIE))
        if agree != "yes":
            raise InvalidInput("tick the box to say you have read the consent text and agree", field="agree")
        try:
            end = dt.datetime.fromisoformat(until.strip())
        except ValueError as exc:
            raise InvalidInput("choose the date your consent ends", field="until") from exc
        if end.tzinfo is None:
            end = end.replace(tzinfo=dt.UTC)
        if len(until.strip()) == 10:  # a date: valid to the end of that day
            end = end + dt.timedelta(days=1) - dt.timedelta(seconds=1)
        enrolments: list[consent.Enrolment] = []
        photo_data = _read(photo, limits.max_bytes)
        voice_data = _read(voice, limits.max_bytes)
        if photo_data:
            enrolments.append(consent.enrol_face(photo_data, limits))
        if voice_data:
            enrolments.extend(consent.enrol_voice(voice_data, limits))
        consent.grant(
            session,
            gateway.keys,
            settings,
            found,
            operations=operations,
            until=end,
            text_version=text_version,
            enrolments=enrolments,
        )
        return _back(token, "granted")

    return _act(request, gateway, token, work)


@router.post("/{token}/decline")
def decline(token: str, request: Request, gateway: Gateway = Depends(get_gateway)) -> Response:
    def work(session: Any, found: ConsentRequest) -> Response:
        consent.decline(session, found)
        return _back(token, "declined")

    return _act(request, gateway, token, work)


@router.post("/{token}/revoke")
def revoke(token: str, request: Request, gateway: Gateway = Depends(get_gateway)) -> Response:
    def work(session: Any, found: ConsentRequest) -> Response:
        record = consent.consent_for_request(session, found)
        if record is None:
            raise InvalidInput("there is no consent to withdraw on this link")
        consent.revoke(session, record, actor=f"consent-subject:{found.subject_id}")
        return _back(token, "revoked")

    return _act(request, gateway, token, work)
