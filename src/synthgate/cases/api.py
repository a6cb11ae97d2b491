"""The public complaint API (DSP-12, GAI-15) and appeals: thin over ``cases.service``.

No login: anyone may complain. Abuse is held off by a per-address rate limit (counted in the
database, so it holds across workers), single-use signed challenges with a proof of work, and
merging of complaints about the same content. An appeal is authenticated by the token in the
affected user's notice, or by the provider's API key (scope ``accounts``) naming its user.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import UploadFile

from synthgate.cases import process
from synthgate.cases import service as cases
from synthgate.errors import Conflict, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.identity import service as identity
from synthgate.web.deps import authenticate_key, bearer, get_gateway

router = APIRouter(tags=["complaints"])


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/v1/complaints/process", summary="The published complaint handling process and deadlines")
def published(gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    return process.published_process(gateway.settings)


@router.get("/v1/complaints/challenge", summary="A single-use anti-spam challenge (proof of work)")
def challenge(gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    return {
        "token": cases.issue_challenge(gateway.keys),
        "difficulty_bits": gateway.settings.complaint_pow_bits,
        "how": "a decimal nonce such that sha256(token + ':' + nonce) starts with difficulty_bits zero bits",
    }


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _read_complaint(request: Request) -> tuple[cases.ComplaintInput, str, str | None, str]:
    """Multipart (a form with an optional ``file``) or JSON (the file base64 in ``content.data``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data") or content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        upload = form.get("file")
        data: bytes | None = None
        declared = ""
        if isinstance(upload, UploadFile):
            data = await upload.read() or None
            extension = (
                (upload.filename or "").rsplit(".", 1)[-1].lower() if "." in (upload.filename or "") else ""
            )
            declared = ",".join(p for p in ((upload.content_type or ""), extension) if p)
        item = cases.ComplaintInput(
            category=_text(form, "category"),
            description=_text(form, "description"),
            contact=_text(form, "contact") or None,
            content_url=_text(form, "content_url") or None,
            produce_id=_text(form, "produce_id") or None,
            upload=data,
            upload_declared=declared,
        )
        return item, _text(form, "challenge"), _text(form, "nonce") or None, _text(form, "website")
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidInput("send a JSON object or a multipart form") from exc
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    parsed = ComplaintBody.model_validate(body)
    file_data = None
    if parsed.content.data:
        try:
            file_data = base64.b64decode(parsed.content.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("content.data is not valid base64", field="content.data") from exc
    item = cases.ComplaintInput(
        category=parsed.category,
        description=parsed.description,
        contact=parsed.contact,
        content_url=parsed.content.url,
        produce_id=parsed.content.produce_id,
        upload=file_data,
        upload_declared=parsed.content.media_type or "",
    )
    return item, parsed.challenge, parsed.nonce, ""


class ContentBody(BaseModel):
    url: str | None = Field(default=None, max_length=2000)
    produce_id: str | None = Field(default=None, max_length=64)
    data: str | None = None
    """The file, base64."""
    media_type: str | None = Field(default=None, max_length=100)
    """What the file claims to be (checked against its content)."""


class ComplaintBody(BaseModel):
    category: str = Field(max_length=32)
    description: str = Field(max_length=cases.MAX_DESCRIPTION)
    contact: str | None = Field(default=None, max_length=cases.MAX_CONTACT)
    content: ContentBody
    challenge: str = Field(max_length=200)
    nonce: str | None = Field(default=None, max_length=32)


def receive(
    gateway: Gateway,
    item: cases.ComplaintInput,
    token: str,
    *,
    channel: str,
    client: str,
    nonce: str | None = None,
    honeypot: str = "",
) -> cases.Receipt:
    settings = gateway.settings
    lookup = cases.check_challenge(
        gateway.keys, settings, token, channel=channel, nonce=nonce, honeypot=honeypot
    )
    try:
        with gateway.db.session() as session:
            return cases.file_complaint(
                session, gateway.keys, settings, item, client=client, challenge_lookup=lookup, channel=channel
            )
    except IntegrityError as exc:
        # Two requests raced with the same single-use token: the second one loses, cleanly.
        raise Conflict("this form was already sent; load it again", code="complaint.reused") from exc


@router.post("/v1/complaints", status_code=201, summary="File a complaint (public; proof of work required)")
async def file_complaint(request: Request, gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    item, token, nonce, honeypot = await _read_complaint(request)
    receipt = await run_in_threadpool(
        receive,
        gateway,
        item,
        token,
        channel="api",
        client=client_address(request),
        nonce=nonce,
        honeypot=honeypot,
    )
    return receipt.as_dict()


@router.get("/v1/complaints/{tracking_number}", summary="The status of a complaint, by its tracking number")
def complaint_status(tracking_number: str, gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    with gateway.db.session() as session:
        return cases.status_for(session, gateway.keys, tracking_number[:64])


class AppealBody(BaseModel):
    decision_id: str = Field(max_length=64)
    grounds: str = Field(max_length=cases.MAX_DESCRIPTION)
    token: str | None = Field(default=None, max_length=100)
    """The token from the decision notice; or authenticate with the service API key and ``user``."""
    user: str | None = Field(default=None, max_length=200)
    """The provider's user id, when the provider appeals on its user's behalf (API key, scope accounts)."""


@router.post("/v1/appeals", status_code=201, summary="Appeal a decision (the affected user)")
def file_appeal(
    body: AppealBody,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    gateway: Gateway = Depends(get_gateway),
) -> dict[str, Any]:
    account_id = None
    if body.token is None:
        caller = authenticate_key(gateway, credentials.credentials if credentials else None, "accounts")
        if not body.user:
            raise InvalidInput("name the user the appeal is for", field="user")
        with gateway.db.session() as session:
            account = identity.get_account_or_none(session, caller.service, body.user)
            account_id = account.id if account is not None else "-"
    with gateway.db.session() as session:
        appeal = cases.file_appeal(
            session,
            gateway.keys,
            gateway.settings,
            body.decision_id,
            body.grounds,
            token=body.token,
            account_id=account_id,
        )
        return {"appeal": appeal.id, "status": appeal.status, "deadline": appeal.due_at.isoformat()}
