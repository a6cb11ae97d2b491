"""The operator console over HTTP: login, roles, CSRF, and each page's writes going through the services."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.audit.models import AuditEvent
from synthgate.devtools.demo import DEMO_PHONE, DEMO_PROVIDER_CODE, CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.governance.models import ApiKey, Service
from synthgate.identity import service as identity
from synthgate.identity.models import Account
from synthgate.operators import service as operators
from synthgate.operators.models import Operator, OperatorSession
from synthgate.rules.models import RulesVersion
from tests.conftest import ServiceWithKey, make_service
from tests.web.conftest import LoggedIn, csrf_token, login_token, make_operator, post_login

ROLES = ("admin", "compliance", "reviewer", "auditor")

# The role matrix from the issue, written out independently of the code's table so this test is the spec.
WRITERS = {
    "services.write": {"admin"},
    "keys.write": {"admin"},
    "accounts.status": {"admin", "compliance", "reviewer"},
    "rules.publish": {"admin", "compliance"},
    "audit.verify": {"admin", "compliance", "auditor"},
    "operators.write": {"admin"},
}
READERS = {
    "/console": set(ROLES),
    "/console/services": {"admin", "compliance", "auditor"},
    "/console/services/{slug}": {"admin", "compliance", "auditor"},
    "/console/keys": {"admin", "compliance", "auditor"},
    "/console/accounts": set(ROLES),
    "/console/accounts/{account_id}": set(ROLES),
    "/console/generations": set(ROLES),
    "/console/generations/{produce_id}": set(ROLES),
    "/console/rules": {"admin", "compliance", "auditor"},
    "/console/rules/{slug}": {"admin", "compliance", "auditor"},
    "/console/audit": {"admin", "compliance", "auditor"},
    "/console/operators": {"admin", "compliance", "auditor"},
}


@dataclass
class World:
    chat: ServiceWithKey
    account_id: str
    produce_id: str
    key_id: str
    victim_id: str

    def fill(self, path: str) -> str:
        return path.format(
            slug=self.chat.service.slug,
            account_id=self.account_id,
            produce_id=self.produce_id,
            key_id=self.key_id,
            operator_id=self.victim_id,
        )


def write_routes() -> list[tuple[str, str, dict[str, str]]]:
    return [
        (
            "/console/services",
            "services.write",
            {"slug": "new-svc", "name": "New", "provider_code": DEMO_PROVIDER_CODE, "profile": "cn"},
        ),
        ("/console/services/{slug}/blocked-terms", "services.write", {"blocked_terms": "bad\nworse"}),
        ("/console/services/{slug}/keys", "keys.write", {"name": "extra"}),
        ("/console/keys/{key_id}/revoke", "keys.write", {}),
        ("/console/accounts/{account_id}/status", "accounts.status", {"status": "warned", "reason": "spam"}),
        ("/console/rules/{slug}", "rules.publish", {"version": "2", "title": "规则", "body": "Rules v2"}),
        ("/console/audit/verify", "audit.verify", {}),
        ("/console/operators", "operators.write", {"username": "newbie", "role": "auditor"}),
        ("/console/operators/{operator_id}/unlock", "operators.write", {}),
        ("/console/operators/{operator_id}/active", "operators.write", {"active": "0"}),
        ("/console/operators/{operator_id}/reset-password", "operators.write", {}),
        ("/console/operators/{operator_id}/reset-totp", "operators.write", {}),
    ]


SELF_SERVICE_POSTS = ["/console/password", "/console/totp/enable", "/console/totp/disable", "/console/logout"]


@pytest.fixture
def world(gateway: Gateway, sms: CapturingSmsSender) -> World:
    chat = make_service(gateway)
    with gateway.db.session() as session:
        service = session.get(Service, chat.service.id)
        assert service is not None
        account, _ = identity.register_account(session, service, "u1", actor="test")
        challenge = identity.start_phone_verification(
            session, gateway.keys, gateway.settings, sms, account, DEMO_PHONE
        )
        assert identity.confirm_phone_verification(
            session, gateway.keys, gateway.settings, account, challenge.id, sms.last_code()
        ).ok
        from synthgate.rules import service as rules

        rules.accept(session, account, "1")
        account_id = account.id
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.service_id == service.id))
        assert key_id is not None
        victim, _ = operators.create_operator(session, username="victim", role="reviewer", actor="test")
        victim_id = victim.id
    ticket = gateway.check("chat", "u1", prompt="写一首诗")
    done = gateway.complete("chat", ticket.ticket_id, "床前明月光")
    return World(chat, account_id, done.produce_id, key_id, victim_id)


def _account_status(gateway: Gateway, account_id: str) -> str:
    with gateway.db.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.status


def _events(gateway: Gateway, *, actor: str | None = None, event_type: str | None = None) -> list[AuditEvent]:
    with gateway.db.session() as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if event_type:
            stmt = stmt.where(AuditEvent.event_type == event_type)
        return list(session.scalars(stmt))


# --- not logged in ------------------------------------------------------------------------------


def test_pages_redirect_to_login_when_logged_out(client: TestClient, world: World) -> None:
    for path in READERS:
        response = client.get(world.fill(path), follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login"), path
    login_page = client.get("/console/accounts", follow_redirects=True)
    assert login_page.status_code == 200 and "Operator login" in login_page.text


def test_posts_refused_when_logged_out(client: TestClient, gateway: Gateway, world: World) -> None:
    for path, _, data in write_routes():
        response = client.post(world.fill(path), data={**data, "csrf_token": "x"}, follow_redirects=False)
        assert response.status_code == 401, path
    for path in SELF_SERVICE_POSTS:
        assert client.post(path, data={"csrf_token": "x"}, follow_redirects=False).status_code == 401, path
    assert _account_status(gateway, world.account_id) == "active"


def test_forged_session_cookie_is_not_a_login(client: TestClient, world: World) -> None:
    client.cookies.set("sg_console", "forged-token", path="/console")
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")


# --- login --------------------------------------------------------------------------------------


def test_login_sets_a_strict_session_cookie_and_security_headers(
    client: TestClient, gateway: Gateway
) -> None:
    password = make_operator(gateway, "alice", "auditor")
    response = post_login(client, "alice", password)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sg_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with gateway.db.session() as session:
        stored = session.scalars(select(OperatorSession)).one()
        # Only the hash of the token is in the database.
        assert stored.token_hash != token and token not in stored.token_hash
    page = client.get("/console")
    assert page.status_code == 200 and "Dashboard" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_wrong_password_is_refused_and_audited(client: TestClient, gateway: Gateway) -> None:
    make_operator(gateway, "alice", "auditor")
    response = post_login(client, "alice", "not-the-password!")
    assert response.status_code == 401
    assert "wrong username, password or code" in response.text
    assert "sg_console=" not in ";".join(response.headers.get_list("set-cookie"))
    failed = _events(gateway, event_type="operator.login_failed")
    assert failed and failed[-1].data["reason"] == "bad_password"


def test_login_form_needs_its_login_token(client: TestClient, gateway: Gateway) -> None:
    password = make_operator(gateway, "alice", "auditor")
    login_token(client)
    response = client.post(
        "/console/login",
        data={"username": "alice", "password": password, "login_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert not _events(gateway, event_type="operator.login_succeeded")


def test_lockout_after_max_failures_shows_locked(client: TestClient, gateway: Gateway) -> None:
    password = make_operator(gateway, "alice", "auditor")
    for _ in range(gateway.settings.login_max_failures):
        assert post_login(client, "alice", "wrong-password-xx").status_code == 401
    locked = post_login(client, "alice", password)
    assert locked.status_code == 403 and "locked" in locked.text


def test_login_next_never_leaves_the_console(client: TestClient, gateway: Gateway) -> None:
    password = make_operator(gateway, "alice", "auditor")
    response = post_login(client, "alice", password, next_path="https://evil.example/")
    assert response.headers["location"] == "/console"
    client.cookies.clear()
    response = post_login(client, "alice", password, next_path="//evil.example/console")
    assert response.headers["location"] == "/console"
    client.cookies.clear()
    response = post_login(client, "alice", password, next_path="/console/audit")
    assert response.headers["location"] == "/console/audit"


def test_must_change_password_blocks_everything_until_changed(client: TestClient, gateway: Gateway) -> None:
    password = make_operator(gateway, "boss", "admin", must_change_password=True)
    response = post_login(client, "boss", password)
    assert response.headers["location"] == "/console/password"
    assert client.get("/console/services", follow_redirects=False).headers["location"] == "/console/password"
    csrf = csrf_token(client)
    blocked = client.post(
        "/console/operators",
        data={"csrf_token": csrf, "username": "x1", "role": "auditor"},
        follow_redirects=False,
    )
    assert blocked.status_code == 403
    mismatch = client.post(
        "/console/password",
        data={
            "csrf_token": csrf,
            "current_password": password,
            "new_password": "a-new-long-password",
            "confirm_password": "a-different-password",
        },
    )
    assert mismatch.status_code == 422 and "differ" in mismatch.text
    changed = client.post(
        "/console/password",
        data={
            "csrf_token": csrf,
            "current_password": password,
            "new_password": "a-new-long-password",
            "confirm_password": "a-new-long-password",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/console"
    assert client.get("/console/services").status_code == 200
    assert _events(gateway, actor="operator:boss", event_type="operator.password_changed")


def test_logout_ends_the_session(
    client: TestClient, login_as: Callable[[str], LoggedIn], gateway: Gateway
) -> None:
    me = login_as("auditor")
    token = client.cookies.get("sg_console")
    out = client.post("/console/logout", data={"csrf_token": me.csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert _events(gateway, event_type="operator.logout")
    # Replaying the old cookie after logout gets nothing.
    client.cookies.set("sg_console", token or "", path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_totp_enrol_then_login_needs_code(
    client: TestClient, login_as: Callable[[str], LoggedIn], gateway: Gateway
) -> None:
    me = login_as("compliance")
    page = client.get("/console/totp")
    secret = re.search(r'aria-label="TOTP key">([A-Z2-7]+)<', page.text)
    pending = re.search(r'name="pending" value="([^"]+)"', page.text)
    assert secret and pending
    wrong = client.post(
        "/console/totp/enable", data={"csrf_token": me.csrf, "pending": pending.group(1), "code": "000000"}
    )
    assert wrong.status_code == 422 and secret.group(1) in wrong.text  # same enrolment offered again
    code = pyotp.TOTP(secret.group(1)).now()
    ok = client.post(
        "/console/totp/enable",
        data={"csrf_token": me.csrf, "pending": pending.group(1), "code": code},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    client.cookies.clear()
    needs_code = post_login(client, me.username, me.password)
    assert needs_code.status_code == 401 and "authenticator" in needs_code.text
    # The enrolment code is spent; the next step's code is inside the drift window.
    next_code = pyotp.TOTP(secret.group(1)).at(time.time() + 30)
    logged_in = post_login(client, me.username, me.password, totp_code=next_code)
    assert logged_in.status_code == 303
    assert "Two-step login is off" not in client.get("/console").text


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_pages_by_role(
    role: str, client: TestClient, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    login_as(role)
    for path, readers in READERS.items():
        response = client.get(world.fill(path), follow_redirects=False)
        expected = 200 if role in readers else 403
        assert response.status_code == expected, (role, path, response.status_code)
        if expected == 403:
            assert "Not allowed" in response.text


@pytest.mark.parametrize("role", ROLES)
def test_every_write_route_is_403_for_a_lower_role(
    role: str, client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as(role)
    denied = 0
    for path, permission, data in write_routes():
        if role in WRITERS[permission]:
            continue
        response = client.post(world.fill(path), data={**data, "csrf_token": me.csrf}, follow_redirects=False)
        assert response.status_code == 403, (role, path, response.status_code)
        assert "may not" in response.text
        denied += 1
    assert denied == sum(1 for _, p, _ in write_routes() if role not in WRITERS[p])
    # Nothing happened: no writes were attributed to this operator beyond logging in.
    writes = [e.event_type for e in _events(gateway, actor=f"operator:{me.username}")]
    assert all(t.startswith("operator.login") for t in writes), writes
    assert _account_status(gateway, world.account_id) == "active"


@pytest.mark.parametrize("role", ROLES)
def test_allowed_roles_get_through(
    role: str, client: TestClient, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as(role)
    for path, permission, data in write_routes():
        if role not in WRITERS[permission] or "/active" in path or "reset-password" in path:
            continue  # deactivation / password reset are checked on their own below
        response = client.post(world.fill(path), data={**data, "csrf_token": me.csrf}, follow_redirects=False)
        assert response.status_code in (200, 303), (role, path, response.status_code, response.text[:500])


# --- CSRF ---------------------------------------------------------------------------------------


def test_every_post_needs_the_csrf_token(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    login_as("admin")
    paths = [world.fill(p) for p, _, _ in write_routes()] + SELF_SERVICE_POSTS
    for path in paths:
        data = next((d for p, _, d in write_routes() if world.fill(p) == path), {})
        missing = client.post(path, data=data, follow_redirects=False)
        assert missing.status_code == 403, path
        assert "CSRF" in missing.text
        wrong = client.post(path, data={**data, "csrf_token": "forged"}, follow_redirects=False)
        assert wrong.status_code == 403, path
    # Still logged in (logout without the token did nothing) and nothing changed.
    assert client.get("/console", follow_redirects=False).status_code == 200
    assert _account_status(gateway, world.account_id) == "active"
    assert not _events(gateway, event_type="account.status_changed")


def test_csrf_token_of_another_session_is_rejected(
    client: TestClient, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    other = login_as("reviewer")
    login_as("admin")
    response = client.post(
        f"/console/accounts/{world.account_id}/status",
        data={"status": "warned", "reason": "x", "csrf_token": other.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 403


# --- pages doing their work through the services ------------------------------------------------


def test_reviewer_changes_account_status_with_reason(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("reviewer")
    found = client.get("/console/accounts", params={"q": "13800138000"})
    assert found.status_code == 200 and f"/console/accounts/{world.account_id}" in found.text
    no_reason = client.post(
        f"/console/accounts/{world.account_id}/status",
        data={"status": "suspended", "reason": "  ", "csrf_token": me.csrf},
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    assert _account_status(gateway, world.account_id) == "active"
    changed = client.post(
        f"/console/accounts/{world.account_id}/status",
        data={
            "status": "restricted",
            "reason": "repeated attempts to make rumours",
            "expires_at": "2999-01-01T00:00",
            "restrictions": "generate",
            "csrf_token": me.csrf,
        },
    )
    assert changed.status_code == 200
    assert "Status changed to restricted" in changed.text
    assert "repeated attempts to make rumours" in changed.text
    assert _account_status(gateway, world.account_id) == "restricted"
    event = _events(gateway, event_type="account.status_changed")[-1]
    assert event.actor == "operator:reviewer-op"
    assert event.data["reason"] == "repeated attempts to make rumours" and event.data["to"] == "restricted"


def test_identifiers_masked_and_only_for_admin_and_compliance(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    login_as("reviewer")
    page = client.get(f"/console/accounts/{world.account_id}")
    assert "phone" in page.text and "otp" in page.text
    assert "8000" not in page.text.split("Verifications")[1].split("</table>")[0]
    login_as("compliance")
    page = client.get(f"/console/accounts/{world.account_id}")
    assert "138****8000" in page.text
    assert "13800138000" not in page.text
    viewed = _events(gateway, event_type="operator.viewed_identifiers")
    assert [e.actor for e in viewed] == ["operator:compliance-op"]


def test_admin_creates_service_and_key_secret_shown_once(
    client: TestClient, gateway: Gateway, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("admin")
    bad = client.post(
        "/console/services",
        data={"csrf_token": me.csrf, "slug": "vision", "name": "Vision", "provider_code": "nonsense"},
    )
    assert bad.status_code == 422 and "provider code" in bad.text and 'value="vision"' in bad.text
    created = client.post(
        "/console/services",
        data={
            "csrf_token": me.csrf,
            "slug": "vision",
            "name": "Vision 视觉",
            "provider_code": DEMO_PROVIDER_CODE,
            "filing_number": "Beijing-1",
            "filing_link": "https://beian.example.cn/1",
            "blocked_terms": "foo\nbar",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"] == "/console/services/vision"
    with gateway.db.session() as session:
        service = session.scalars(select(Service).where(Service.slug == "vision")).one()
        assert service.settings["blocked_terms"] == ["foo", "bar"]
    issued = client.post(
        "/console/services/vision/keys", data={"csrf_token": me.csrf, "name": "prod", "scopes": ["generate"]}
    )
    secret = re.search(r'id="new-key">(sg_[^<]+)<', issued.text)
    assert secret
    assert secret.group(1) not in client.get("/console/services/vision").text
    assert secret.group(1) not in client.get("/console/keys").text
    with gateway.db.session() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.service_id == service.id)).one()
        assert key.scopes == ["generate"] and key.created_by == "operator:admin-op"
    revoked = client.post(
        f"/console/keys/{key.id}/revoke", data={"csrf_token": me.csrf}, follow_redirects=False
    )
    assert revoked.status_code == 303
    with gateway.db.session() as session:
        revoked_key = session.get(ApiKey, key.id)
        assert revoked_key is not None and revoked_key.revoked_at is not None
    actors = {e.event_type: e.actor for e in _events(gateway)}
    assert (
        actors["service.created"]
        == actors["api_key.created"]
        == actors["api_key.revoked"]
        == "operator:admin-op"
    )


def test_compliance_publishes_rules(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("compliance")
    form = client.get("/console/rules/chat")
    assert "Rules v1" in form.text  # the next version starts from the current text
    body = "第一条\r\n第二条"
    published = client.post(
        "/console/rules/chat",
        data={"csrf_token": me.csrf, "version": "2", "title": "平台规则 v2", "body": body},
    )
    assert published.status_code == 200 and "Version 2 published" in published.text
    again = client.post(
        "/console/rules/chat", data={"csrf_token": me.csrf, "version": "2", "title": "dup", "body": "x"}
    )
    assert again.status_code == 409 and "immutable" in again.text
    with gateway.db.session() as session:
        latest = session.scalars(select(RulesVersion).where(RulesVersion.version == "2")).one()
        assert latest.body == "第一条\n第二条" and latest.published_by == "operator:compliance-op"


def test_generations_list_and_detail(
    client: TestClient, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    login_as("auditor")
    listed = client.get("/console/generations", params={"service": "chat"})
    assert world.produce_id in listed.text
    empty = client.get("/console/generations", params={"date_to": "2000-01-01"})
    assert world.produce_id not in empty.text
    bad_date = client.get("/console/generations", params={"date_from": "yesterday"})
    assert bad_date.status_code == 422
    detail = client.get(f"/console/generations/{world.produce_id}")
    assert detail.status_code == 200
    assert f"/console/accounts/{world.account_id}" in detail.text
    assert ">u1</a>" in detail.text  # the provider's user id, not just our account id
    assert ">u1</a>" in listed.text
    assert "Output SHA-256" in detail.text and "explicit" in detail.text
    assert client.get("/console/generations/nope").status_code == 404


def test_auditor_verifies_the_log(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("auditor")
    report = client.post("/console/audit/verify", data={"csrf_token": me.csrf})
    assert report.status_code == 200
    assert "The log verifies" in report.text and "passed" in report.text
    event = _events(gateway, event_type="audit.verified")[-1]
    assert event.actor == "operator:auditor-op" and event.data["ok"] is True


def test_admin_manages_operators(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("admin")
    created = client.post(
        "/console/operators", data={"csrf_token": me.csrf, "username": "Carol", "role": "reviewer"}
    )
    password = re.search(r'id="issued-password">([^<]+)<', created.text)
    assert created.status_code == 200 and password
    assert password.group(1) not in client.get("/console/operators").text
    duplicate = client.post(
        "/console/operators", data={"csrf_token": me.csrf, "username": "carol", "role": "auditor"}
    )
    assert duplicate.status_code == 409
    bad_role = client.post(
        "/console/operators", data={"csrf_token": me.csrf, "username": "dave", "role": "root"}
    )
    assert bad_role.status_code == 422

    # Lock the victim out, then unlock.
    with gateway.db.session() as session:
        victim = session.get(Operator, world.victim_id)
        assert victim is not None
        victim.failed_logins = gateway.settings.login_max_failures
    assert "Unlock" in client.get("/console/operators").text
    client.post(f"/console/operators/{world.victim_id}/unlock", data={"csrf_token": me.csrf})
    reset = client.post(f"/console/operators/{world.victim_id}/reset-password", data={"csrf_token": me.csrf})
    new_password = re.search(r'id="issued-password">([^<]+)<', reset.text)
    assert new_password
    deactivated = client.post(
        f"/console/operators/{world.victim_id}/active", data={"csrf_token": me.csrf, "active": "0"}
    )
    assert deactivated.status_code == 200
    with gateway.db.session() as session:
        victim = session.get(Operator, world.victim_id)
        assert victim is not None and not victim.active and victim.failed_logins == 0
        assert victim.must_change_password
    self_off = client.post(
        f"/console/operators/{me_id(gateway, me)}/active", data={"csrf_token": me.csrf, "active": "0"}
    )
    assert self_off.status_code == 409
    client.cookies.clear()
    assert post_login(client, "carol", password.group(1)).headers["location"] == "/console/password"
    types = [e.event_type for e in _events(gateway, actor="operator:admin-op")]
    for expected in (
        "operator.created",
        "operator.unlocked",
        "operator.password_reset",
        "operator.deactivated",
    ):
        assert expected in types


def me_id(gateway: Gateway, me: LoggedIn) -> str:
    with gateway.db.session() as session:
        found = operators.get_operator_by_username(session, me.username)
        assert found is not None
        return found.id


def test_every_operator_write_is_audited_with_the_operator(
    client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as("admin")
    before = _count_events(gateway)
    for path, _, data in write_routes():
        if "/active" in path:
            continue
        client.post(world.fill(path), data={**data, "csrf_token": me.csrf}, follow_redirects=False)
    mine = {e.event_type for e in _events(gateway, actor="operator:admin-op")}
    for expected in (
        "service.created",
        "service.settings_changed",
        "api_key.created",
        "api_key.revoked",
        "account.status_changed",
        "rules.published",
        "audit.verified",
        "operator.created",
        "operator.unlocked",
        "operator.password_reset",
    ):
        assert expected in mine, expected
    assert _count_events(gateway) > before


def _count_events(gateway: Gateway) -> int:
    with gateway.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_unknown_things_are_404_pages(
    client: TestClient, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    login_as("admin")
    for path in ("/console/services/nope", "/console/accounts/nope", "/console/rules/nope"):
        response = client.get(path)
        assert response.status_code == 404 and "text/html" in response.headers["content-type"], path


_POST_FORM = re.compile(r'<form[^>]*method="post"[^>]*>(.*?)</form>', re.S)


@pytest.mark.parametrize("role", ROLES)
def test_every_rendered_form_carries_the_session_csrf_token(
    role: str, client: TestClient, gateway: Gateway, world: World, login_as: Callable[[str], LoggedIn]
) -> None:
    me = login_as(role)
    with gateway.db.session() as session:
        victim = session.get(Operator, world.victim_id)
        assert victim is not None
        victim.failed_logins = gateway.settings.login_max_failures  # so the unlock form renders too
    forms = 0
    for path, readers in [*READERS.items(), ("/console/totp", set(ROLES)), ("/console/password", set(ROLES))]:
        if role not in readers:
            continue
        page = client.get(world.fill(path))
        assert page.status_code == 200, path
        for body in _POST_FORM.findall(page.text):
            assert f'name="csrf_token" value="{me.csrf}"' in body, (path, body[:300])
            forms += 1
    assert forms >= 2  # at least the logout and password forms
