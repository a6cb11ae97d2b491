"""Bad input gets a clear 4xx (never a 5xx) and leaves stored data intact; a dead database is a 503."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.identity.models import Account
from synthgate.web.app import create_app
from tests.conftest import ServiceWithKey, free_port


def test_malformed_json_names_the_field(client: TestClient, chat: ServiceWithKey) -> None:
    response = client.post("/v1/accounts", json={"user_id": 42, "kind": "robot"}, headers=chat.headers)
    assert response.status_code == 422
    fields = {tuple(d["loc"]) for d in response.json()["detail"]}
    assert ("body", "user_id") in fields and ("body", "kind") in fields
    broken = client.post(
        "/v1/generations",
        content=b'{"user": "u1", "input": ',
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    both = client.post(
        "/v1/generations", json={"user": "u1", "input": "a", "messages": []}, headers=chat.headers
    )
    assert both.status_code == 422 and "at most one of" in both.text


def test_body_over_limit_is_413_and_nothing_stored(
    settings: Settings, gateway: Gateway, chat: ServiceWithKey
) -> None:
    settings.max_body_bytes = 1000
    with TestClient(create_app(settings, gateway)) as client:
        big = client.post("/v1/accounts", json={"user_id": "x" * 5000}, headers=chat.headers)
        assert big.status_code == 413 and "exceeds 1000 bytes" in big.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(10):
                yield b"x" * 500

        streamed = client.post(
            "/v1/accounts", content=chunks(), headers={**chat.headers, "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_hostile_strings_are_refused_cleanly(client: TestClient, chat: ServiceWithKey) -> None:
    for user_id in ("\x00evil", "a\nb", "x" * 201):
        response = client.post("/v1/accounts", json={"user_id": user_id}, headers=chat.headers)
        assert response.status_code == 422, user_id
    assert client.get("/v1/accounts/%2e%2e%2f%2e%2e", headers=chat.headers).status_code == 404


def test_database_unavailable_is_503_with_retry_after(tmp_path) -> None:
    dead = Settings(
        data_dir=tmp_path, database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none", scheduler=False
    )
    gateway = Gateway(dead)
    with TestClient(create_app(dead, gateway), raise_server_exceptions=False) as client:
        response = client.get("/v1/rules", headers={"Authorization": "Bearer sg_whatever"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "database_unavailable"
        health = client.get("/healthz")
        assert health.status_code == 503
