"""Operators: argon2id passwords, lockout, TOTP, sessions, CSRF tokens, and the audit trail of each."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from synthgate.audit.models import AuditEvent
from synthgate.config import Settings
from synthgate.errors import Conflict, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.operators import service as operators
from synthgate.operators.models import Operator, OperatorSession

PASSWORD = "correct horse battery staple"


def _create(
    gateway: Gateway, username: str = "alice", role: str = "reviewer", *, must_change_password: bool = False
) -> str:
    with gateway.db.session() as session:
        operator, _ = operators.create_operator(
            session,
            username=username,
            role=role,
            actor="test",
            password=PASSWORD,
            must_change_password=must_change_password,
        )
        return operator.id


def _login(
    gateway: Gateway, password: str = PASSWORD, code: str | None = None, username: str = "alice"
) -> operators.LoginOutcome:
    with gateway.db.session() as session:
        outcome = operators.login(
            session, gateway.keys, gateway.settings, username=username, password=password, totp_code=code
        )
        return outcome


def _events(gateway: Gateway, event_type: str | None = None) -> list[AuditEvent]:
    with gateway.db.session() as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if event_type:
            stmt = stmt.where(AuditEvent.event_type == event_type)
        return list(session.scalars(stmt))


def _operator(session: Session, operator_id: str) -> Operator:
    return operators.get_operator(session, operator_id)


# --- creation and passwords ---------------------------------------------------------------------


def test_roles_are_the_four_console_roles() -> None:
    assert operators.ROLES == ("admin", "reviewer", "compliance", "auditor")


def test_password_is_hashed_with_argon2id(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        assert operator.password_hash.startswith("$argon2id$")
        assert PASSWORD not in operator.password_hash
        assert not operator.must_change_password
    created = _events(gateway, "operator.created")[0]
    assert created.actor == "test" and created.subject_id == operator_id
    assert created.data == {
        "username": "alice",
        "role": "reviewer",
        "generated_password": False,
        "must_change_password": False,
    }


def test_generated_password_is_strong_returned_once_and_must_be_changed(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        operator, password = operators.create_operator(session, username="bob", role="auditor", actor="test")
        assert len(password) >= 20 and operator.must_change_password
    with gateway.db.session() as session:
        _, other = operators.create_operator(session, username="bob2", role="auditor", actor="test")
    assert other != password
    dumped = json.dumps([e.data for e in _events(gateway)])
    assert password not in dumped and other not in dumped


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("", "admin", PASSWORD, "username"),
        ("a", "admin", PASSWORD, "username"),
        ("has space", "admin", PASSWORD, "username"),
        ("-dash", "admin", PASSWORD, "username"),
        ("x" * 65, "admin", PASSWORD, "username"),
        ("ok-name", "root", PASSWORD, "role"),
        ("ok-name", "admin", "short-pw-11", "password"),
        ("ok-name", "admin", "x" * 1025, "password"),
    ],
)
def test_create_validates(gateway: Gateway, username: str, role: str, password: str, field: str) -> None:
    with gateway.db.session() as session, pytest.raises(InvalidInput) as raised:
        operators.create_operator(session, username=username, role=role, actor="test", password=password)
    assert raised.value.details["field"] == field
    assert not _events(gateway, "operator.created")


def test_password_of_exactly_twelve_characters_is_accepted(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        operators.create_operator(
            session, username="twelve", role="admin", actor="t", password="abcdefghijkl"
        )


def test_usernames_are_case_insensitive_and_unique(gateway: Gateway) -> None:
    _create(gateway, username="Alice")
    with gateway.db.session() as session, pytest.raises(Conflict):
        operators.create_operator(session, username="ALICE", role="admin", actor="t", password=PASSWORD)
    assert _login(gateway, username="ALICE").ok


# --- login and lockout --------------------------------------------------------------------------


def test_login_success_starts_a_session_and_is_audited(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    outcome = _login(gateway)
    assert outcome.ok and outcome.token and outcome.console_session
    event = _events(gateway, "operator.login_succeeded")[0]
    assert event.actor == "operator:alice" and event.subject_id == operator_id
    assert outcome.token not in json.dumps(event.data)


def test_wrong_password_counts_and_is_audited(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    outcome = _login(gateway, password="wrong password!!")
    assert not outcome.ok and outcome.reason == "bad_credentials" and outcome.token is None
    with gateway.db.session() as session:
        assert _operator(session, operator_id).failed_logins == 1
    failed = _events(gateway, "operator.login_failed")[0]
    assert failed.data["reason"] == "bad_password" and failed.data["failed_logins"] == 1
    assert "wrong password!!" not in json.dumps(failed.data)
    # A success resets the count.
    assert _login(gateway).ok
    with gateway.db.session() as session:
        assert _operator(session, operator_id).failed_logins == 0


def test_unknown_user_fails_like_a_wrong_password(gateway: Gateway) -> None:
    outcome = _login(gateway, username="nobody")
    assert not outcome.ok and outcome.reason == "bad_credentials"
    assert outcome.message == _login(gateway, password="bad-bad-bad-bad", username="nobody").message
    assert _events(gateway, "operator.login_failed")[0].data["reason"] == "unknown_user"


def test_lockout_after_max_failures_even_with_right_password(gateway: Gateway, settings: Settings) -> None:
    operator_id = _create(gateway)
    for _ in range(settings.login_max_failures):
        assert not _login(gateway, password="wrong password!!").ok
    locked = _login(gateway)
    assert not locked.ok and locked.reason == "locked" and locked.token is None
    assert len(_events(gateway, "operator.locked")) == 1
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        assert operators.is_locked(operator, settings)
        operators.unlock(session, operator, actor="operator:root")
    assert _login(gateway).ok
    unlocked = _events(gateway, "operator.unlocked")[0]
    assert unlocked.actor == "operator:root" and unlocked.data["failed_logins"] == settings.login_max_failures


def test_lockout_threshold_follows_settings(settings: Settings) -> None:
    strict = settings.model_copy(update={"login_max_failures": 2})
    gateway = Gateway(strict)
    try:
        _create(gateway)
        _login(gateway, password="wrong password!!")
        _login(gateway, password="wrong password!!")
        assert _login(gateway).reason == "locked"
    finally:
        gateway.close()


def test_inactive_operator_cannot_log_in_and_loses_sessions(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    outcome = _login(gateway)
    with gateway.db.session() as session:
        operators.set_active(session, _operator(session, operator_id), False, actor="operator:root")
    with gateway.db.session() as session:
        assert operators.resolve_session(session, outcome.token) is None
        assert session.scalars(select(OperatorSession)).all() == []
    assert _login(gateway).reason == "inactive"
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        with pytest.raises(Conflict):
            operators.set_active(session, operator, False, actor="operator:alice")
        operators.set_active(session, operator, True, actor="operator:root")
    assert _login(gateway).ok
    assert [e.event_type for e in _events(gateway) if e.event_type.endswith("activated")] == [
        "operator.deactivated",
        "operator.activated",
    ]


# --- TOTP ---------------------------------------------------------------------------------------


def _enrol(gateway: Gateway, operator_id: str) -> str:
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        enrolment = operators.begin_totp_enrolment(gateway.keys, operator)
        assert enrolment.uri.startswith("otpauth://totp/") and "issuer=synthgate" in enrolment.uri
        assert enrolment.secret not in enrolment.pending
        operators.enable_totp(
            session,
            gateway.keys,
            operator,
            pending=enrolment.pending,
            code=pyotp.TOTP(enrolment.secret).now(),
        )
        return enrolment.secret


def test_totp_enrolment_stores_the_secret_encrypted(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    secret = _enrol(gateway, operator_id)
    with gateway.db.session() as session:
        stored = _operator(session, operator_id).totp_secret_enc
        assert stored and secret not in stored
        assert gateway.keys.decrypt(stored, "totp") == secret
    enabled = _events(gateway, "operator.totp_enabled")[0]
    assert enabled.actor == "operator:alice"
    assert secret not in json.dumps([e.data for e in _events(gateway)])


def test_totp_enrolment_needs_a_matching_code_and_its_own_pending_token(gateway: Gateway) -> None:
    alice = _create(gateway)
    bob = _create(gateway, username="bob")
    with gateway.db.session() as session:
        operator = _operator(session, alice)
        enrolment = operators.begin_totp_enrolment(gateway.keys, operator)
        with pytest.raises(InvalidInput):
            operators.enable_totp(session, gateway.keys, operator, pending=enrolment.pending, code="123")
        wrong = "000000" if pyotp.TOTP(enrolment.secret).now() != "000000" else "111111"
        with pytest.raises(InvalidInput):
            operators.enable_totp(session, gateway.keys, operator, pending=enrolment.pending, code=wrong)
        # Alice's pending secret cannot be planted into Bob's account.
        with pytest.raises(InvalidInput):
            operators.enable_totp(
                session,
                gateway.keys,
                _operator(session, bob),
                pending=enrolment.pending,
                code=pyotp.TOTP(enrolment.secret).now(),
            )
        with pytest.raises(InvalidInput):
            operators.resume_totp_enrolment(gateway.keys, operator, "garbage")
        assert (
            operators.resume_totp_enrolment(gateway.keys, operator, enrolment.pending).secret
            == enrolment.secret
        )
        assert operator.totp_secret_enc is None


def test_login_with_totp(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    secret = _enrol(gateway, operator_id)
    missing = _login(gateway)
    assert not missing.ok and missing.reason == "totp_required"
    wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    bad = _login(gateway, code=wrong_code)
    assert not bad.ok and bad.reason == "bad_totp"
    with gateway.db.session() as session:
        # A missing code is a prompt, not a guess; a wrong code is a guess.
        assert _operator(session, operator_id).failed_logins == 1
    # The enrolment used the current step's code; the next step's code is inside the drift window.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    assert _login(gateway, code=next_code).ok
    # A wrong password never reaches the code check, and says the same thing.
    assert _login(gateway, password="wrong password!!", code=next_code).message == bad.message


def test_a_totp_code_opens_one_session_only(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    moment = time.time()
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        enrolment = operators.begin_totp_enrolment(gateway.keys, operator)
        totp = pyotp.TOTP(enrolment.secret)
        enrolment_code = totp.at(moment)
        operators.enable_totp(session, gateway.keys, operator, pending=enrolment.pending, code=enrolment_code)
    # The code that completed the enrolment cannot also be used to log in.
    replayed_enrolment = _login(gateway, code=enrolment_code)
    assert not replayed_enrolment.ok and replayed_enrolment.reason == "bad_totp"
    code = totp.at(moment + 30)
    assert _login(gateway, code=code).ok
    again = _login(gateway, code=code)
    assert not again.ok and again.reason == "bad_totp"
    # Nor does an older step's code work once a newer one was accepted.
    older = _login(gateway, code=totp.at(moment - 30))
    assert not older.ok
    reasons = [event.data["reason"] for event in _events(gateway, "operator.login_failed")]
    assert reasons.count("totp_reused") >= 2  # the third may fall outside the drift window instead


def test_disable_totp_needs_the_password_unless_an_admin_resets(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    _enrol(gateway, operator_id)
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        with pytest.raises(InvalidInput):
            operators.disable_totp(session, operator, actor="operator:alice", password="not my password")
        operators.disable_totp(session, operator, actor="operator:alice", password=PASSWORD)
        assert operator.totp_secret_enc is None
    _enrol(gateway, operator_id)
    with gateway.db.session() as session:
        operators.disable_totp(session, _operator(session, operator_id), actor="operator:root")
    disabled = _events(gateway, "operator.totp_disabled")
    assert [(e.actor, e.data["by_self"]) for e in disabled] == [
        ("operator:alice", True),
        ("operator:root", False),
    ]
    assert _login(gateway).ok


# --- sessions and CSRF --------------------------------------------------------------------------


def test_session_stores_only_the_token_hash(gateway: Gateway) -> None:
    outcome = _login(gateway) if _create(gateway) else None
    assert outcome and outcome.token
    with gateway.db.session() as session:
        stored = session.scalars(select(OperatorSession)).one()
        assert stored.token_hash == hashlib.sha256(outcome.token.encode()).hexdigest()
        resolved = operators.resolve_session(session, outcome.token)
        assert resolved is not None and resolved[0].username == "alice"
        assert operators.resolve_session(session, outcome.token + "x") is None
        assert operators.resolve_session(session, None) is None
        assert operators.resolve_session(session, stored.token_hash) is None  # the hash is not a token


def test_session_expires_after_the_ttl(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(gateway)
    outcome = _login(gateway)
    assert outcome.console_session
    ttl = gateway.settings.session_ttl_seconds
    assert outcome.console_session.expires_at - outcome.console_session.created_at == dt.timedelta(
        seconds=ttl
    )
    start = outcome.console_session.created_at
    monkeypatch.setattr(operators, "utcnow", lambda: start + dt.timedelta(seconds=ttl - 1))
    with gateway.db.session() as session:
        assert operators.resolve_session(session, outcome.token) is not None
    monkeypatch.setattr(operators, "utcnow", lambda: start + dt.timedelta(seconds=ttl))
    with gateway.db.session() as session:
        assert operators.resolve_session(session, outcome.token) is None
    with gateway.db.session() as session:
        assert session.scalars(select(OperatorSession)).all() == []  # expired rows are removed


def test_purge_expired_sessions(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(gateway)
    _login(gateway)
    _login(gateway)
    with gateway.db.session() as session:
        assert operators.purge_expired_sessions(session) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=gateway.settings.session_ttl_seconds + 1)
    monkeypatch.setattr(operators, "utcnow", lambda: later)
    with gateway.db.session() as session:
        assert operators.purge_expired_sessions(session) == 2


def test_csrf_token_is_per_session_and_compared(gateway: Gateway) -> None:
    _create(gateway)
    first, second = _login(gateway), _login(gateway)
    assert first.console_session and second.console_session
    assert len(first.console_session.csrf_token) >= 32
    assert first.console_session.csrf_token != second.console_session.csrf_token
    assert operators.csrf_ok(first.console_session, first.console_session.csrf_token)
    assert not operators.csrf_ok(first.console_session, second.console_session.csrf_token)
    assert not operators.csrf_ok(first.console_session, "")
    assert not operators.csrf_ok(first.console_session, None)


def test_logout_deletes_the_session_and_is_audited(gateway: Gateway) -> None:
    _create(gateway)
    outcome = _login(gateway)
    with gateway.db.session() as session:
        assert operators.logout(session, outcome.token)
    with gateway.db.session() as session:
        assert operators.resolve_session(session, outcome.token) is None
        assert not operators.logout(session, outcome.token)
    assert _events(gateway, "operator.logout")[0].actor == "operator:alice"


# --- password changes ---------------------------------------------------------------------------


def test_change_password(gateway: Gateway) -> None:
    operator_id = _create(gateway, must_change_password=True)
    current, other = _login(gateway), _login(gateway)
    assert current.console_session and other.console_session
    new = "a completely new passphrase"
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        assert operator.must_change_password
        for wrong_current, candidate in (
            (("nope-nope-nope"), new),
            (PASSWORD, "short"),
            (PASSWORD, PASSWORD),
        ):
            with pytest.raises(InvalidInput):
                operators.change_password(
                    session, operator, current=wrong_current, new=candidate, keep_session_id=None
                )
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        operators.change_password(
            session, operator, current=PASSWORD, new=new, keep_session_id=current.console_session.id
        )
        assert not operator.must_change_password
    with gateway.db.session() as session:
        assert operators.resolve_session(session, current.token) is not None
        assert operators.resolve_session(session, other.token) is None  # other sessions end
    assert not _login(gateway).ok
    assert _login(gateway, password=new).ok
    changed = _events(gateway, "operator.password_changed")
    assert len(changed) == 1 and changed[0].actor == "operator:alice"


def test_admin_reset_password(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    before = _login(gateway)
    with gateway.db.session() as session:
        operator = _operator(session, operator_id)
        with pytest.raises(Conflict):
            operators.reset_password(session, operator, actor="operator:alice")
        fresh = operators.reset_password(session, operator, actor="operator:root")
        assert operator.must_change_password
    with gateway.db.session() as session:
        assert operators.resolve_session(session, before.token) is None
    assert not _login(gateway).ok
    assert _login(gateway, password=fresh).ok
    assert fresh not in json.dumps([e.data for e in _events(gateway)])
    assert _events(gateway, "operator.password_reset")[0].actor == "operator:root"


def test_no_secret_ever_reaches_the_audit_log(gateway: Gateway) -> None:
    operator_id = _create(gateway)
    secret = _enrol(gateway, operator_id)
    good = _login(gateway, code=pyotp.TOTP(secret).now())
    _login(gateway, password="a wrong guess here", code="123456")
    with gateway.db.session() as session:
        operators.change_password(
            session,
            _operator(session, operator_id),
            current=PASSWORD,
            new="next passphrase!!",
            keep_session_id=None,
        )
    with gateway.db.session() as session:
        operators.logout(session, good.token)
    dumped = json.dumps([[e.actor, e.data] for e in _events(gateway)], ensure_ascii=False)
    for forbidden in (PASSWORD, "next passphrase!!", "a wrong guess here", secret, good.token or "?"):
        assert forbidden not in dumped
    with gateway.db.session() as session:
        for row in session.scalars(select(Operator)):
            assert "passphrase" not in row.password_hash
