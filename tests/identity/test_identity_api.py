"""Real-identity verification (DSP-9) through the HTTP API, and personal data at rest."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.identity import service as identity
from synthgate.identity.models import OtpChallenge
from synthgate.identity.validators import random_resident_id, random_uscc
from tests.conftest import ServiceWithKey

PHONE = "+8613912345678"


def _register(client: TestClient, chat: ServiceWithKey, user: str = "alice", kind: str = "person") -> None:
    response = client.post("/v1/accounts", json={"user_id": user, "kind": kind}, headers=chat.headers)
    assert response.status_code == 201, response.text


def test_dsp9_phone_otp_verifies_account(
    client: TestClient, chat: ServiceWithKey, sms: CapturingSmsSender
) -> None:
    _register(client, chat)
    started = client.post(
        "/v1/accounts/alice/verification/phone", json={"phone": "139 1234 5678"}, headers=chat.headers
    )
    assert started.status_code == 202, started.text
    assert sms.sent[-1][0] == PHONE
    confirmed = client.post(
        "/v1/accounts/alice/verification/phone/confirm",
        json={"challenge_id": started.json()["challenge_id"], "code": sms.last_code()},
        headers=chat.headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    account = confirmed.json()["account"]
    assert account["verified"] and account["verification_method"] == "phone"


def test_dsp9_otp_wrong_code_attempt_limit_and_single_use(
    client: TestClient, chat: ServiceWithKey, sms: CapturingSmsSender, gateway: Gateway
) -> None:
    _register(client, chat)
    challenge = client.post(
        "/v1/accounts/alice/verification/phone", json={"phone": PHONE}, headers=chat.headers
    ).json()
    code = sms.last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    url = "/v1/accounts/alice/verification/phone/confirm"
    for attempt in range(gateway.settings.otp_max_attempts):
        response = client.post(
            url, json={"challenge_id": challenge["challenge_id"], "code": wrong}, headers=chat.headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["attempts_left"] == gateway.settings.otp_max_attempts - attempt - 1
    # Even the right code is refused once the attempts are spent: guessing cannot continue.
    locked = client.post(
        url, json={"challenge_id": challenge["challenge_id"], "code": code}, headers=chat.headers
    )
    assert locked.status_code == 429
    assert client.get("/v1/accounts/alice", headers=chat.headers).json()["verified"] is False


def test_dsp9_otp_expires_and_is_stored_hashed(
    client: TestClient, chat: ServiceWithKey, sms: CapturingSmsSender, gateway: Gateway
) -> None:
    _register(client, chat)
    challenge = client.post(
        "/v1/accounts/alice/verification/phone", json={"phone": PHONE}, headers=chat.headers
    ).json()
    code = sms.last_code()
    with gateway.db.session() as session:
        row = session.get(OtpChallenge, challenge["challenge_id"])
        assert row is not None
        assert code not in row.code_hash and len(row.code_hash) == 64
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = client.post(
        "/v1/accounts/alice/verification/phone/confirm",
        json={"challenge_id": challenge["challenge_id"], "code": code},
        headers=chat.headers,
    )
    assert expired.status_code == 422 and "expired" in expired.json()["error"]["message"]


def test_dsp9_otp_rate_limited(client: TestClient, chat: ServiceWithKey) -> None:
    _register(client, chat)
    assert (
        client.post(
            "/v1/accounts/alice/verification/phone", json={"phone": PHONE}, headers=chat.headers
        ).status_code
        == 202
    )
    again = client.post("/v1/accounts/alice/verification/phone", json={"phone": PHONE}, headers=chat.headers)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) > 0
    # The same number from another account is limited too (per-number, not only per-account).
    _register(client, chat, "bob")
    other = client.post("/v1/accounts/bob/verification/phone", json={"phone": PHONE}, headers=chat.headers)
    assert other.status_code == 429


def test_dsp9_resident_id_checked_then_verified(client: TestClient, chat: ServiceWithKey) -> None:
    import random

    _register(client, chat)
    valid = random_resident_id(random.Random(7))
    broken = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    bad = client.post(
        "/v1/accounts/alice/verification/id-number",
        json={"name": "张三", "id_number": broken},
        headers=chat.headers,
    )
    assert bad.status_code == 422 and "check" in bad.json()["error"]["message"]
    good = client.post(
        "/v1/accounts/alice/verification/id-number",
        json={"name": "张三", "id_number": valid},
        headers=chat.headers,
    )
    assert good.status_code == 200, good.text
    assert good.json()["account"]["verification_method"] == "id_number"


def test_dsp9_uscc_for_organisations_only(client: TestClient, chat: ServiceWithKey) -> None:
    import random

    _register(client, chat, "acme", kind="organisation")
    uscc = random_uscc(random.Random(3))
    person = client.post("/v1/accounts", json={"user_id": "p"}, headers=chat.headers)
    assert person.status_code == 201
    wrong_kind = client.post(
        "/v1/accounts/p/verification/uscc", json={"name": "ACME", "uscc": uscc}, headers=chat.headers
    )
    assert wrong_kind.status_code == 422
    ok = client.post(
        "/v1/accounts/acme/verification/uscc", json={"name": "ACME", "uscc": uscc}, headers=chat.headers
    )
    assert ok.status_code == 200, ok.text


@pytest.fixture
def identity_service() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A national online-identity verifier stand-in speaking JSON over HTTP on loopback."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            verified = body["subject"] == "good-token"
            payload = json.dumps(
                {"verified": verified, "detail": "ok" if verified else "token rejected"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/verify", received
    server.shutdown()


def test_dsp9_national_identity_through_pluggable_verifier(
    client: TestClient,
    chat: ServiceWithKey,
    gateway: Gateway,
    identity_service: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = identity_service
    unconfigured = client.post(
        "/v1/accounts/alice/verification/national-identity",
        json={"token": "good-token"},
        headers=chat.headers,
    )
    assert unconfigured.status_code == 404  # no such account yet
    _register(client, chat)
    refused = client.post(
        "/v1/accounts/alice/verification/national-identity",
        json={"token": "good-token"},
        headers=chat.headers,
    )
    assert refused.status_code == 422 and "no verifier is configured" in refused.json()["error"]["message"]

    gateway.settings.national_identity_verifier = "http"
    gateway.settings.national_identity_url = url
    rejected = client.post(
        "/v1/accounts/alice/verification/national-identity", json={"token": "bad-token"}, headers=chat.headers
    )
    assert rejected.status_code == 422 and "token rejected" in rejected.json()["error"]["message"]
    accepted = client.post(
        "/v1/accounts/alice/verification/national-identity",
        json={"token": "good-token"},
        headers=chat.headers,
    )
    assert accepted.status_code == 200 and accepted.json()["account"]["verified"]
    assert [r["subject"] for r in received] == ["bad-token", "good-token"]


def test_dsp9_personal_data_encrypted_at_rest_and_findable(
    client: TestClient, chat: ServiceWithKey, sms: CapturingSmsSender, gateway: Gateway
) -> None:
    _register(client, chat)
    started = client.post(
        "/v1/accounts/alice/verification/phone", json={"phone": PHONE}, headers=chat.headers
    ).json()
    client.post(
        "/v1/accounts/alice/verification/phone/confirm",
        json={"challenge_id": started["challenge_id"], "code": sms.last_code()},
        headers=chat.headers,
    )
    with gateway.db.engine.connect() as connection:
        dump = []
        for table in ("verifications", "otp_challenges", "accounts", "audit_events"):
            dump += [repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))]
    everything = "\n".join(dump)
    assert "13912345678" not in everything
    with gateway.db.session() as session:
        found = identity.search_accounts(
            session, gateway.keys, service_id=chat.service.id, query="13912345678"
        )
        assert [a.external_id for a in found] == ["alice"]
        assert (
            identity.search_accounts(session, gateway.keys, service_id=chat.service.id, query="13900000000")
            == []
        )


def test_dsp10_account_status_bars_and_expires(
    client: TestClient, chat: ServiceWithKey, sms: CapturingSmsSender, gateway: Gateway
) -> None:
    from tests.conftest import ready_user

    ready_user(gateway, sms, chat.service, "alice")
    assert (
        client.post(
            "/v1/generations", json={"user": "alice", "input": "hi"}, headers=chat.headers
        ).status_code
        == 201
    )
    with gateway.db.session() as session:
        account = identity.get_account(session, chat.service, "alice")
        identity.set_status(
            session,
            account,
            "suspended",
            reason="fraud report 42",
            operator="operator:test",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
    refused = client.post("/v1/generations", json={"user": "alice", "input": "hi"}, headers=chat.headers)
    assert refused.status_code == 403 and refused.json()["error"]["reason"] == "identity.suspended"
    assert "fraud report 42" in refused.json()["error"]["message"]
    with gateway.db.session() as session:
        account = identity.get_account(session, chat.service, "alice")
        account.status_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # time passes
    assert (
        client.post(
            "/v1/generations", json={"user": "alice", "input": "hi"}, headers=chat.headers
        ).status_code
        == 201
    )
    with gateway.db.session() as session:
        account = identity.get_account(session, chat.service, "alice")
        with pytest.raises(Exception, match="reason"):
            identity.set_status(session, account, "warned", reason=" ", operator="operator:test")
        identity.set_status(session, account, "closed", reason="user asked", operator="operator:test")
        history = identity.status_history(session, account)
        assert [(c.from_status, c.to_status) for c in history] == [
            ("active", "closed"),
            ("active", "suspended"),
        ]
        assert history[1].reason == "fraud report 42" and history[1].operator == "operator:test"
    closed = client.post("/v1/generations", json={"user": "alice", "input": "hi"}, headers=chat.headers)
    assert closed.json()["error"]["reason"] == "identity.closed"
