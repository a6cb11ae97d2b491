"""Writes accounts, verifications, OTP challenges and status changes (DSP-9, DSP-10 sanctions)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.config import Settings
from synthgate.db import utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound, RateLimited, Refused
from synthgate.governance.models import Service
from synthgate.identity.models import Account, AccountStatusChange, OtpChallenge, Verification
from synthgate.identity.validators import (
    InvalidIdentifier,
    validate_cn_mobile,
    validate_resident_id,
    validate_uscc,
)
from synthgate.identity.verifiers import Claim, SmsSender, verifier_for
from synthgate.keys import KeyStore

STATUSES = ("active", "warned", "restricted", "suspended", "closed")
BARRED = {"suspended", "closed"}
KINDS = ("person", "organisation")


def get_account_or_none(session: Session, service: Service, external_id: str) -> Account | None:
    return session.scalar(
        select(Account).where(Account.service_id == service.id, Account.external_id == external_id)
    )


def get_account(session: Session, service: Service, external_id: str) -> Account:
    account = get_account_or_none(session, service, external_id)
    if account is None:
        raise NotFound(f"no account {external_id!r} in this service")
    return account


def register_account(
    session: Session, service: Service, external_id: str, *, kind: str = "person", actor: str
) -> tuple[Account, bool]:
    """The account for this provider user id, created when new. Returns (account, created)."""
    if not external_id or len(external_id) > 200 or not external_id.isprintable():
        raise InvalidInput("user id must be 1-200 printable characters", field="user_id")
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    existing = session.scalar(
        select(Account).where(Account.service_id == service.id, Account.external_id == external_id)
    )
    if existing is not None:
        if existing.kind != kind:
            raise Conflict(f"account {external_id!r} exists as {existing.kind}", field="kind")
        return existing, False
    account = Account(service_id=service.id, external_id=external_id, kind=kind)
    session.add(account)
    session.flush()
    audit.record(
        session,
        "account.registered",
        actor=actor,
        service_id=service.id,
        subject_type="account",
        subject_id=account.id,
        data={"kind": kind},
    )
    return account, True


# --- verification -----------------------------------------------------------------------------


def _hash_code(keys: KeyStore, challenge_id: str, code: str) -> str:
    return keys.mac("otp", f"{challenge_id}:{code}")


def start_phone_verification(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    sender: SmsSender,
    account: Account,
    phone: str,
) -> OtpChallenge:
    try:
        e164 = validate_cn_mobile(phone)
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc), field="phone") from exc
    lookup = keys.lookup_hash(e164, "phone")
    now = utcnow()
    recent = session.execute(
        select(func.count(), func.max(OtpChallenge.created_at)).where(
            (OtpChallenge.phone_lookup == lookup) | (OtpChallenge.account_id == account.id),
            OtpChallenge.created_at > now - dt.timedelta(hours=1),
        )
    ).one()
    count, latest = recent
    if latest is not None:
        wait = settings.otp_min_interval_seconds - (now - latest).total_seconds()
        if wait > 0:
            raise RateLimited(
                "a code was sent moments ago; wait before asking again", retry_after=int(wait) + 1
            )
    if count >= settings.otp_max_per_hour:
        raise RateLimited("too many codes for this number or account in the last hour", retry_after=3600)
    challenge = OtpChallenge(
        account_id=account.id,
        phone_enc=keys.encrypt(e164, "phone"),
        phone_lookup=lookup,
        code_hash="",
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.otp_ttl_seconds),
    )
    session.add(challenge)
    session.flush()
    code = f"{secrets.randbelow(10**settings.otp_length):0{settings.otp_length}d}"
    challenge.code_hash = _hash_code(keys, challenge.id, code)
    minutes = max(1, settings.otp_ttl_seconds // 60)
    sender.send(e164, f"【synthgate】验证码 {code}，{minutes} 分钟内有效。Your code is {code}.")
    audit.record(
        session,
        "identity.otp_sent",
        actor=f"service:{account.service_id}",
        service_id=account.service_id,
        subject_type="account",
        subject_id=account.id,
        data={"challenge": challenge.id, "sender": sender.name},
    )
    return challenge


@dataclass(frozen=True)
class ConfirmOutcome:
    ok: bool
    reason: str = ""
    attempts_left: int = 0


def confirm_phone_verification(
    session: Session, keys: KeyStore, settings: Settings, account: Account, challenge_id: str, code: str
) -> ConfirmOutcome:
    """Check a code. Failed attempts are counted in this transaction: commit even when not ``ok``."""
    challenge = session.get(OtpChallenge, challenge_id)
    if challenge is None or challenge.account_id != account.id:
        raise NotFound("no such verification challenge for this account")
    if challenge.consumed_at is not None:
        return ConfirmOutcome(False, "this code was used already")
    if challenge.expires_at <= utcnow():
        return ConfirmOutcome(False, "this code has expired; ask for a new one")
    if challenge.attempts >= settings.otp_max_attempts:
        return ConfirmOutcome(False, "too many wrong attempts; ask for a new code")
    challenge.attempts += 1
    if not hmac.compare_digest(challenge.code_hash, _hash_code(keys, challenge.id, code.strip())):
        left = settings.otp_max_attempts - challenge.attempts
        audit.record(
            session,
            "identity.otp_failed",
            actor=f"account:{account.id}",
            service_id=account.service_id,
            subject_type="account",
            subject_id=account.id,
            data={"challenge": challenge.id, "attempts": challenge.attempts},
        )
        return ConfirmOutcome(False, "wrong code", attempts_left=left)
    challenge.consumed_at = utcnow()
    _record_verification(
        session,
        account,
        method="phone",
        verifier="otp",
        subject_enc=challenge.phone_enc,
        subject_lookup=challenge.phone_lookup,
    )
    return ConfirmOutcome(True)


def _record_verification(
    session: Session,
    account: Account,
    *,
    method: str,
    verifier: str,
    subject_enc: str,
    subject_lookup: str,
    name_enc: str | None = None,
    detail: str = "",
) -> Verification:
    verification = Verification(
        account_id=account.id,
        method=method,
        verifier=verifier,
        subject_enc=subject_enc,
        subject_lookup=subject_lookup,
        name_enc=name_enc,
    )
    session.add(verification)
    account.verified_at = utcnow()
    account.verification_method = method
    session.flush()
    audit.record(
        session,
        "identity.verified",
        actor=f"account:{account.id}",
        service_id=account.service_id,
        subject_type="account",
        subject_id=account.id,
        data={"method": method, "verifier": verifier, "verification": verification.id, "detail": detail},
    )
    return verification


def verify_document(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    account: Account,
    *,
    method: str,
    subject: str,
    name: str | None = None,
) -> tuple[bool, str]:
    """Resident ID number, USCC, or a national online identity token, through the configured verifier."""
    try:
        if method == "id_number":
            if account.kind != "person":
                raise InvalidInput("resident ID numbers verify persons; this account is an organisation")
            normalised = validate_resident_id(subject)
        elif method == "uscc":
            if account.kind != "organisation":
                raise InvalidInput("a unified social credit code verifies organisations; this is a person")
            normalised = validate_uscc(subject)
        elif method == "national_identity":
            normalised = subject.strip()
            if not normalised or len(normalised) > 4096:
                raise InvalidInput("the national identity token is empty or too long", field="token")
        else:
            raise InvalidInput(f"unknown verification method {method!r}")
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc), field=method) from exc
    if name is not None and (not name.strip() or len(name) > 200):
        raise InvalidInput("name must be 1-200 characters", field="name")
    outcome = verifier_for(settings, method).verify(Claim(method=method, subject=normalised, name=name))
    if not outcome.verified:
        audit.record(
            session,
            "identity.verification_failed",
            actor=f"account:{account.id}",
            service_id=account.service_id,
            subject_type="account",
            subject_id=account.id,
            data={"method": method, "verifier": outcome.verifier, "detail": outcome.detail},
        )
        return False, outcome.detail
    _record_verification(
        session,
        account,
        method=method,
        verifier=outcome.verifier,
        subject_enc=keys.encrypt(normalised, method),
        subject_lookup=keys.lookup_hash(normalised, method),
        name_enc=keys.encrypt(name, "name") if name else None,
        detail=outcome.detail,
    )
    return True, outcome.detail


# --- status -----------------------------------------------------------------------------------


def effective_status(account: Account, now: dt.datetime | None = None) -> str:
    """A timed status (warned, restricted, suspended until …) lapses back to active on its own."""
    now = now or utcnow()
    if (
        account.status in ("warned", "restricted", "suspended")
        and account.status_until
        and account.status_until <= now
    ):
        return "active"
    return account.status


def set_status(
    session: Session,
    account: Account,
    status: str,
    *,
    reason: str,
    operator: str,
    expires_at: dt.datetime | None = None,
    restrictions: list[str] | None = None,
) -> AccountStatusChange:
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    if not reason or not reason.strip():
        raise InvalidInput("a status change needs a reason", field="reason")
    if account.status == "closed" and status != "closed":
        raise Conflict("a closed account cannot be reopened; register a new one")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expiry must be in the future", field="expires_at")
    if expires_at is not None and status in ("active", "closed"):
        raise InvalidInput(f"status {status} does not expire", field="expires_at")
    chosen_restrictions = list(restrictions or (["generate"] if status == "restricted" else []))
    change = AccountStatusChange(
        account_id=account.id,
        from_status=effective_status(account),
        to_status=status,
        reason=reason.strip(),
        operator=operator,
        expires_at=expires_at,
        restrictions=chosen_restrictions,
    )
    account.status = status
    account.status_reason = reason.strip()
    account.status_until = expires_at
    account.restrictions = chosen_restrictions
    session.add(change)
    session.flush()
    audit.record(
        session,
        "account.status_changed",
        actor=operator,
        service_id=account.service_id,
        subject_type="account",
        subject_id=account.id,
        data={
            "from": change.from_status,
            "to": status,
            "reason": change.reason,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "restrictions": chosen_restrictions,
        },
    )
    return change


def ensure_may_generate(account: Account, feature: str = "generate") -> None:
    """Refuse unverified or barred accounts before anything is generated (DSP-9, DSP-10)."""
    if account.verified_at is None:
        raise Refused(
            "identity.unverified",
            "DSP-9",
            "this account has not completed real-identity verification; verify a mobile number, "
            "ID number or credit code first",
        )
    status = effective_status(account)
    if status in BARRED:
        raise Refused(
            f"identity.{status}",
            "DSP-10",
            f"this account is {status}" + (f": {account.status_reason}" if account.status_reason else ""),
        )
    if status == "restricted" and feature in (account.restrictions or []):
        raise Refused(
            "identity.restricted",
            "DSP-10",
            f"this account may not use {feature}"
            + (f": {account.status_reason}" if account.status_reason else ""),
        )


def search_accounts(
    session: Session,
    keys: KeyStore,
    *,
    service_id: str | None = None,
    query: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Account]:
    """Find accounts by user id, account id, or a verified phone / ID number / USCC (by keyed hash)."""
    stmt = select(Account).order_by(Account.created_at.desc()).limit(limit).offset(offset)
    if service_id:
        stmt = stmt.where(Account.service_id == service_id)
    if query:
        query = query.strip()
        lookups = [keys.lookup_hash(v, ctx) for ctx, v in _identifier_forms(query)]
        by_identifier = select(Verification.account_id).where(Verification.subject_lookup.in_(lookups))
        stmt = stmt.where(
            Account.external_id.contains(query) | (Account.id == query) | Account.id.in_(by_identifier)
        )
    if status:
        stmt = stmt.where(Account.status == status)
    return list(session.scalars(stmt))


def _identifier_forms(query: str) -> list[tuple[str, str]]:
    forms: list[tuple[str, str]] = []
    for context, validate in (
        ("phone", validate_cn_mobile),
        ("id_number", validate_resident_id),
        ("uscc", validate_uscc),
    ):
        try:
            forms.append((context, validate(query)))
        except (InvalidIdentifier, TypeError):
            continue
    return forms


def status_history(session: Session, account: Account) -> list[AccountStatusChange]:
    return list(
        session.scalars(
            select(AccountStatusChange)
            .where(AccountStatusChange.account_id == account.id)
            .order_by(AccountStatusChange.created_at.desc())
        )
    )


def account_summary(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "user_id": account.external_id,
        "kind": account.kind,
        "status": effective_status(account),
        "status_reason": account.status_reason,
        "status_until": account.status_until.isoformat() if account.status_until else None,
        "restrictions": account.restrictions,
        "verified": account.verified_at is not None,
        "verified_at": account.verified_at.isoformat() if account.verified_at else None,
        "verification_method": account.verification_method,
    }


def status_change_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Account status changes in [start, end) by the status set (read only; transparency figures)."""
    rows = session.execute(
        select(AccountStatusChange.to_status, func.count())
        .where(AccountStatusChange.created_at >= start, AccountStatusChange.created_at < end)
        .group_by(AccountStatusChange.to_status)
    ).all()
    return {str(status): int(count) for status, count in rows}
