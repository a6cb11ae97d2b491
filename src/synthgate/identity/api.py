"""End-user accounts and their verification (DSP-9), for the provider's backend (scope ``accounts``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from synthgate.errors import InvalidInput, RateLimited
from synthgate.gateway.sdk import Gateway
from synthgate.identity import schemas
from synthgate.identity import service as identity
from synthgate.web.deps import Caller, get_gateway, require_scope

router = APIRouter(prefix="/v1/accounts", tags=["identity"])
accounts_scope = require_scope("accounts")


def _out(account: identity.Account) -> schemas.AccountOut:
    return schemas.AccountOut(**identity.account_summary(account))


@router.post("", response_model=schemas.AccountOut, status_code=201)
def register(
    body: schemas.AccountCreate,
    response: Response,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.AccountOut:
    """Register an end user under the provider's own user id (idempotent: 200 when it exists)."""
    with gateway.db.session() as session:
        account, created = identity.register_account(
            session, caller.service, body.user_id, kind=body.kind, actor=f"service:{caller.service.slug}"
        )
        if not created:
            response.status_code = 200
        return _out(account)


@router.get("/{user_id}", response_model=schemas.AccountOut)
def show(
    user_id: str, caller: Caller = Depends(accounts_scope), gateway: Gateway = Depends(get_gateway)
) -> schemas.AccountOut:
    with gateway.db.session() as session:
        return _out(identity.get_account(session, caller.service, user_id))


@router.post("/{user_id}/verification/phone", response_model=schemas.PhoneStarted, status_code=202)
def start_phone(
    user_id: str,
    body: schemas.PhoneStart,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.PhoneStarted:
    """Send a one-time code to a mainland mobile number (expiring, attempt- and rate-limited)."""
    with gateway.db.session() as session:
        account = identity.get_account(session, caller.service, user_id)
        challenge = identity.start_phone_verification(
            session, gateway.keys, gateway.settings, gateway.sms_sender, account, body.phone
        )
        return schemas.PhoneStarted(challenge_id=challenge.id, expires_at=challenge.expires_at.isoformat())


@router.post("/{user_id}/verification/phone/confirm", response_model=schemas.VerificationOut)
def confirm_phone(
    user_id: str,
    body: schemas.PhoneConfirm,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.VerificationOut:
    # The attempt counter must be committed even when the code is wrong, so the outcome is
    # returned from the transaction and only then turned into an error.
    with gateway.db.session() as session:
        account = identity.get_account(session, caller.service, user_id)
        outcome = identity.confirm_phone_verification(
            session, gateway.keys, gateway.settings, account, body.challenge_id, body.code
        )
        summary = _out(account)
    if not outcome.ok:
        if outcome.reason.startswith("too many"):
            raise RateLimited(outcome.reason, retry_after=gateway.settings.otp_min_interval_seconds)
        raise InvalidInput(outcome.reason, field="code", attempts_left=outcome.attempts_left)
    return schemas.VerificationOut(verified=True, method="phone", account=summary)


def _document(
    gateway: Gateway, caller: Caller, user_id: str, method: str, subject: str, name: str | None
) -> schemas.VerificationOut:
    with gateway.db.session() as session:
        account = identity.get_account(session, caller.service, user_id)
        ok, detail = identity.verify_document(
            session, gateway.keys, gateway.settings, account, method=method, subject=subject, name=name
        )
        summary = _out(account)
    if not ok:
        raise InvalidInput(f"verification failed: {detail}", code="identity.verification_failed")
    return schemas.VerificationOut(verified=True, method=method, detail=detail, account=summary)


@router.post("/{user_id}/verification/id-number", response_model=schemas.VerificationOut)
def verify_id_number(
    user_id: str,
    body: schemas.IdNumberClaim,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.VerificationOut:
    """Resident ID number: GB 11643 check, then the configured real-name verifier."""
    return _document(gateway, caller, user_id, "id_number", body.id_number, body.name)


@router.post("/{user_id}/verification/uscc", response_model=schemas.VerificationOut)
def verify_uscc(
    user_id: str,
    body: schemas.UsccClaim,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.VerificationOut:
    """Organisations: unified social credit code, GB 32100 check, then the configured verifier."""
    return _document(gateway, caller, user_id, "uscc", body.uscc, body.name)


@router.post("/{user_id}/verification/national-identity", response_model=schemas.VerificationOut)
def verify_national_identity(
    user_id: str,
    body: schemas.NationalIdentityClaim,
    caller: Caller = Depends(accounts_scope),
    gateway: Gateway = Depends(get_gateway),
) -> schemas.VerificationOut:
    """A token from the national online identity authentication service, checked by its verifier."""
    return _document(gateway, caller, user_id, "national_identity", body.token, None)
