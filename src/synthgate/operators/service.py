"""Writes operators and their console sessions: passwords, lockout, TOTP, sessions, CSRF tokens.

Passwords are hashed with argon2id; the TOTP secret is encrypted under the key store's ``totp``
context. A session is a random token held in an HttpOnly cookie; only its SHA-256 is stored, so a
copy of the database cannot be replayed as a login. Every login, logout and credential change
appends an audit event in the same transaction — never with a password or a TOTP secret in it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.config import Settings
from synthgate.db import utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound
from synthgate.keys import KeyStore, KeyStoreError
from synthgate.operators.models import Operator, OperatorSession

ROLES = ("admin", "reviewer", "compliance", "auditor")
MIN_PASSWORD_LENGTH = 12
# argon2 would happily hash a megabyte; a cap keeps one login request from costing seconds of CPU.
MAX_PASSWORD_LENGTH = 1024
GENERATED_PASSWORD_BYTES = 18  # 144 bits, 24 URL-safe characters
TOTP_ISSUER = "synthgate"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# argon2-cffi's defaults are the RFC 9106 low-memory profile of argon2id (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
# Verifying against this when the username is unknown makes a miss cost as much as a wrong password,
# so response timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _actor(operator: Operator) -> str:
    return f"operator:{operator.username}"


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password_rules(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters", field=field)


def hash_password(password: str) -> str:
    _check_password_rules(password)
    return _hasher.hash(password)


def _password_matches(operator: Operator, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        _hasher.verify(operator.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(operator.password_hash):
        # Parameters were raised since this hash was made; upgrade it while we hold the plaintext.
        operator.password_hash = _hasher.hash(password)
    return True


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


# --- operators ------------------------------------------------------------------------------------


def create_operator(
    session: Session,
    *,
    username: str,
    role: str,
    actor: str,
    password: str | None = None,
    must_change_password: bool = False,
) -> tuple[Operator, str]:
    """Create an operator. Returns it with the plaintext password, which is never stored or shown again.

    A generated password always has to be changed at first login: it was seen by whoever created it.
    """
    username = username.strip().lower() if isinstance(username, str) else ""
    if not _USERNAME.match(username):
        raise InvalidInput(
            "username must be 2-64 characters: lower-case letters, digits, dots, dashes, underscores, "
            "starting with a letter or digit",
            field="username",
        )
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    generated = password is None
    plaintext = generate_password() if password is None else password
    password_hash = hash_password(plaintext)
    if session.scalar(select(Operator.id).where(Operator.username == username)) is not None:
        raise Conflict(f"an operator named {username!r} exists already", field="username")
    operator = Operator(
        username=username,
        role=role,
        password_hash=password_hash,
        must_change_password=must_change_password or generated,
        failed_logins=0,
        active=True,
    )
    session.add(operator)
    session.flush()
    audit.record(
        session,
        "operator.created",
        actor=actor,
        subject_type="operator",
        subject_id=operator.id,
        data={
            "username": username,
            "role": role,
            "generated_password": generated,
            "must_change_password": operator.must_change_password,
        },
    )
    return operator, plaintext


def get_operator(session: Session, operator_id: str) -> Operator:
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise NotFound(f"no operator {operator_id!r}")
    return operator


def get_operator_by_username(session: Session, username: str) -> Operator | None:
    return session.scalar(select(Operator).where(Operator.username == username.strip().lower()))


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def is_locked(operator: Operator, settings: Settings) -> bool:
    return operator.failed_logins >= settings.login_max_failures


def unlock(session: Session, operator: Operator, *, actor: str) -> None:
    """Clear the failure count of a locked-out operator (an admin action; lockout never lapses by itself)."""
    previous = operator.failed_logins
    operator.failed_logins = 0
    audit.record(
        session,
        "operator.unlocked",
        actor=actor,
        subject_type="operator",
        subject_id=operator.id,
        data={"failed_logins": previous},
    )


def set_active(session: Session, operator: Operator, active: bool, *, actor: str) -> None:
    if actor == _actor(operator) and not active:
        raise Conflict("you cannot deactivate yourself")
    if operator.active == active:
        return
    operator.active = active
    if not active:
        _end_all_sessions(session, operator)
    audit.record(
        session,
        "operator.activated" if active else "operator.deactivated",
        actor=actor,
        subject_type="operator",
        subject_id=operator.id,
        data={"username": operator.username},
    )


def reset_password(session: Session, operator: Operator, *, actor: str) -> str:
    """Give an operator a fresh generated password (to be changed at next login). Returns it once."""
    if actor == _actor(operator):
        raise Conflict("change your own password on the password page, not by a reset")
    plaintext = generate_password()
    operator.password_hash = hash_password(plaintext)
    operator.must_change_password = True
    operator.failed_logins = 0
    _end_all_sessions(session, operator)
    audit.record(
        session,
        "operator.password_reset",
        actor=actor,
        subject_type="operator",
        subject_id=operator.id,
        data={"username": operator.username},
    )
    return plaintext


def change_password(
    session: Session, operator: Operator, *, current: str, new: str, keep_session_id: str | None
) -> None:
    """The operator's own change: needs the current password; ends every other session of theirs."""
    if not _password_matches(operator, current):
        raise InvalidInput("the current password is wrong", field="current_password")
    _check_password_rules(new, field="new_password")
    if hmac.compare_digest(current.encode(), new.encode()):
        raise InvalidInput("the new password must differ from the current one", field="new_password")
    operator.password_hash = _hasher.hash(new)
    operator.must_change_password = False
    _end_all_sessions(session, operator, keep=keep_session_id)
    audit.record(
        session,
        "operator.password_changed",
        actor=_actor(operator),
        subject_type="operator",
        subject_id=operator.id,
        data={"other_sessions_ended": True},
    )


# --- TOTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    """Base32 secret to type into an authenticator app."""
    uri: str
    """``otpauth://`` URI (what a QR code would carry)."""
    pending: str
    """The secret encrypted and bound to this operator, carried by the confirm form."""


def _pending_context(operator: Operator) -> str:
    # Binding the operator id into the associated data means a pending token made for one operator
    # cannot be replayed in another operator's confirm form.
    return f"totp-pending:{operator.id}"


def totp_enabled(operator: Operator) -> bool:
    return operator.totp_secret_enc is not None


def begin_totp_enrolment(keys: KeyStore, operator: Operator) -> TotpEnrolment:
    """A fresh secret, not stored until the operator proves their app produces its codes."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=operator.username, issuer_name=TOTP_ISSUER)
    return TotpEnrolment(secret=secret, uri=uri, pending=keys.encrypt(secret, _pending_context(operator)))


def _open_pending(keys: KeyStore, operator: Operator, pending: str) -> str:
    try:
        return keys.decrypt(pending, _pending_context(operator))
    except (KeyStoreError, InvalidTag, ValueError) as exc:  # tampered, foreign or garbled token
        raise InvalidInput(
            "this enrolment was altered or is not yours; start again", field="pending"
        ) from exc


def resume_totp_enrolment(keys: KeyStore, operator: Operator, pending: str) -> TotpEnrolment:
    """The same enrolment again (after a mistyped code), so the app need not be set up twice."""
    secret = _open_pending(keys, operator, pending)
    uri = pyotp.TOTP(secret).provisioning_uri(name=operator.username, issuer_name=TOTP_ISSUER)
    return TotpEnrolment(secret=secret, uri=uri, pending=pending)


def _matched_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code ``code`` is, or None. One step either side absorbs clock drift
    between the phone and the server."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    moment = time.time() if now is None else now
    current = int(moment // totp.interval)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(session: Session, operator: Operator, step: int) -> bool:
    """Accept a code's step once: a code seen at login (shoulder-surfed, phished, logged by a proxy)
    cannot be replayed within its window. One conditional UPDATE, so two logins racing with the
    same code cannot both win."""
    claimed = session.execute(
        update(Operator)
        .where(Operator.id == operator.id)
        .where(or_(Operator.totp_last_step.is_(None), Operator.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return False
    operator.totp_last_step = step
    return True


def enable_totp(session: Session, keys: KeyStore, operator: Operator, *, pending: str, code: str) -> None:
    secret = _open_pending(keys, operator, pending)
    step = _matched_step(secret, code)
    if step is None:
        raise InvalidInput("that code does not match; check the app's clock and try again", field="code")
    operator.totp_secret_enc = keys.encrypt(secret, "totp")
    operator.totp_last_step = step  # the enrolment code does not also open a session
    audit.record(
        session,
        "operator.totp_enabled",
        actor=_actor(operator),
        subject_type="operator",
        subject_id=operator.id,
        data={},
    )


def disable_totp(session: Session, operator: Operator, *, actor: str, password: str | None = None) -> None:
    """Remove TOTP. The operator's own request needs their password; an admin reset passes None."""
    if password is not None and not _password_matches(operator, password):
        raise InvalidInput("the password is wrong", field="password")
    if operator.totp_secret_enc is None:
        return
    operator.totp_secret_enc = None
    audit.record(
        session,
        "operator.totp_disabled",
        actor=actor,
        subject_type="operator",
        subject_id=operator.id,
        data={"by_self": actor == _actor(operator)},
    )


# --- login and sessions -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginOutcome:
    """The result of a login attempt. Failures are counted in this transaction: commit even if not ``ok``."""

    ok: bool
    reason: str = ""
    """``bad_credentials``, ``totp_required``, ``bad_totp``, ``locked``, ``inactive`` (empty when ok)."""
    message: str = ""
    operator: Operator | None = None
    token: str | None = None
    """The session token for the cookie; shown once, only its hash is stored."""
    console_session: OperatorSession | None = None


_GENERIC_FAILURE = "wrong username, password or code"


def login(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    *,
    username: str,
    password: str,
    totp_code: str | None = None,
) -> LoginOutcome:
    operator = get_operator_by_username(session, username) if isinstance(username, str) else None
    if operator is None:
        _hasher_verify_dummy(password)
        audit.record(
            session,
            "operator.login_failed",
            actor="anonymous",
            subject_type="operator",
            data={"username": (username or "")[:100], "reason": "unknown_user"},
        )
        return LoginOutcome(False, "bad_credentials", _GENERIC_FAILURE)
    if is_locked(operator, settings):
        # No password check at all while locked: otherwise the lockout would still answer guesses.
        _fail(session, operator, "locked", count=False)
        return LoginOutcome(
            False, "locked", "this operator is locked after too many failed logins; ask an admin to unlock it"
        )
    if not operator.active:
        _hasher_verify_dummy(password)
        _fail(session, operator, "inactive", count=False)
        return LoginOutcome(False, "inactive", _GENERIC_FAILURE)
    if not _password_matches(operator, password):
        return _fail(session, operator, "bad_password", settings=settings)
    if operator.totp_secret_enc is not None:
        if not totp_code or not totp_code.strip():
            # A missing code is a normal two-step prompt, not a guess: it does not count toward lockout.
            _fail(session, operator, "totp_required", count=False)
            return LoginOutcome(False, "totp_required", "enter the 6-digit code from your authenticator app")
        secret = keys.decrypt(operator.totp_secret_enc, "totp")
        step = _matched_step(secret, totp_code)
        if step is None:
            return _fail(session, operator, "bad_totp", settings=settings)
        if not _claim_step(session, operator, step):
            return _fail(session, operator, "totp_reused", settings=settings)
    operator.failed_logins = 0
    console_session, token = start_session(session, settings, operator)
    audit.record(
        session,
        "operator.login_succeeded",
        actor=_actor(operator),
        subject_type="operator",
        subject_id=operator.id,
        data={"session": console_session.id, "totp": operator.totp_secret_enc is not None},
    )
    return LoginOutcome(True, operator=operator, token=token, console_session=console_session)


def _hasher_verify_dummy(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])


def _fail(
    session: Session, operator: Operator, reason: str, *, count: bool = True, settings: Settings | None = None
) -> LoginOutcome:
    if count:
        operator.failed_logins += 1
    audit.record(
        session,
        "operator.login_failed",
        actor="anonymous",
        subject_type="operator",
        subject_id=operator.id,
        data={"username": operator.username, "reason": reason, "failed_logins": operator.failed_logins},
    )
    if count and settings is not None and operator.failed_logins == settings.login_max_failures:
        audit.record(
            session,
            "operator.locked",
            actor="system",
            subject_type="operator",
            subject_id=operator.id,
            data={"username": operator.username, "failed_logins": operator.failed_logins},
        )
    if reason in ("bad_totp", "totp_reused"):
        return LoginOutcome(False, "bad_totp", _GENERIC_FAILURE)
    return LoginOutcome(False, "bad_credentials", _GENERIC_FAILURE)


def start_session(session: Session, settings: Settings, operator: Operator) -> tuple[OperatorSession, str]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    console_session = OperatorSession(
        token_hash=_sha256(token),
        operator_id=operator.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.session_ttl_seconds),
    )
    session.add(console_session)
    session.flush()
    return console_session, token


def resolve_session(session: Session, token: str | None) -> tuple[Operator, OperatorSession] | None:
    """The live session for a cookie token, or None (unknown, expired, or the operator is inactive)."""
    if not token or len(token) > 200:
        return None
    console_session = session.scalar(
        select(OperatorSession).where(OperatorSession.token_hash == _sha256(token))
    )
    if console_session is None:
        return None
    if console_session.expires_at <= utcnow():
        session.delete(console_session)
        return None
    operator = session.get(Operator, console_session.operator_id)
    if operator is None or not operator.active:
        return None
    return operator, console_session


def csrf_ok(console_session: OperatorSession, submitted: str | None) -> bool:
    if not submitted:
        return False
    return hmac.compare_digest(console_session.csrf_token.encode(), submitted.encode())


def logout(session: Session, token: str | None) -> bool:
    """End the session behind a cookie token. Returns whether there was one."""
    resolved = resolve_session(session, token)
    if resolved is None:
        return False
    operator, console_session = resolved
    session.delete(console_session)
    audit.record(
        session,
        "operator.logout",
        actor=_actor(operator),
        subject_type="operator",
        subject_id=operator.id,
        data={"session": console_session.id},
    )
    return True


def _end_all_sessions(session: Session, operator: Operator, keep: str | None = None) -> None:
    stmt = delete(OperatorSession).where(OperatorSession.operator_id == operator.id)
    if keep is not None:
        stmt = stmt.where(OperatorSession.id != keep)
    session.execute(stmt)


def purge_expired_sessions(session: Session) -> int:
    result = session.execute(delete(OperatorSession).where(OperatorSession.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def record_action(
    session: Session,
    operator: Operator | str,
    event_type: str,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    service_id: str | None = None,
    data: dict[str, object] | None = None,
) -> None:
    """Audit an operator action no domain service records (viewing personal data, verifying the log)."""
    actor = _actor(operator) if isinstance(operator, Operator) else operator
    audit.record(
        session,
        event_type,
        actor=actor,
        service_id=service_id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=dict(data or {}),
    )
