"""Services (provider code GB-PC, filing DSP-19); API keys shown once, stored hashed, revocable, scoped."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from synthgate.errors import Conflict, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from tests.conftest import ServiceWithKey, make_service


def test_gbpc_service_requires_valid_provider_code(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        with pytest.raises(InvalidInput, match="provider code"):
            governance.create_service(
                session,
                gateway.keys,
                slug="bad",
                name="Bad",
                provider_code="001191440300708461136X1XGW3",
                actor="t",
            )
        with pytest.raises(InvalidInput, match="filing link"):
            governance.create_service(
                session,
                gateway.keys,
                slug="bad",
                name="Bad",
                provider_code="001191440300708461136T1XGW3",
                filing_link="javascript:alert(1)",
                actor="t",
            )
    make_service(gateway, "dup")
    with gateway.db.session() as session, pytest.raises(Conflict):
        governance.create_service(
            session,
            gateway.keys,
            slug="dup",
            name="Dup",
            provider_code="001191440300708461136T1XGW3",
            actor="t",
        )


def test_keys_stored_hashed_revocable_and_scoped(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey
) -> None:
    with gateway.db.engine.connect() as connection:
        stored = " ".join(repr(tuple(r)) for r in connection.execute(text("SELECT * FROM api_keys")))
    assert chat.key not in stored and chat.key[10:] not in stored

    assert client.get("/v1/rules", headers=chat.headers).status_code == 200
    assert client.get("/v1/rules", headers={"Authorization": "Bearer sg_unknown"}).status_code == 401
    assert client.get("/v1/rules", headers={"Authorization": "Bearer nonsense"}).status_code == 401

    with gateway.db.session() as session:
        generate_only = governance.create_api_key(session, chat.service, actor="t", scopes=["generate"])
    forbidden = client.get("/v1/rules", headers={"Authorization": f"Bearer {generate_only.secret}"})
    assert forbidden.status_code == 403 and "scope" in forbidden.json()["error"]["message"]

    with gateway.db.session() as session:
        key = governance.authenticate(session, chat.key)[0]
        governance.revoke_api_key(session, key.prefix, actor="t")
    revoked = client.get("/v1/rules", headers=chat.headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
