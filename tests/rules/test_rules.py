"""Versioned rules (DSP-8): public page, acceptance per version, re-acceptance on a new version."""

from __future__ import annotations

from fastapi.testclient import TestClient

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.rules import service as rules
from tests.conftest import ServiceWithKey, ready_user


def test_dsp8_new_version_requires_reacceptance(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    assert (
        client.post("/v1/generations", json={"user": "u1", "input": "hi"}, headers=chat.headers).status_code
        == 201
    )
    with gateway.db.session() as session:
        rules.publish(session, chat.service, version="2", title="平台规则 v2", body="新规则", actor="test")
    refused = client.post("/v1/generations", json={"user": "u1", "input": "hi"}, headers=chat.headers)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (
        error["reason"] == "rules.not_accepted"
        and error["clause"] == "DSP-8"
        and error["rules_version"] == "2"
    )

    current = client.get("/v1/rules", headers=chat.headers).json()
    assert current["version"] == "2" and current["url"].endswith("/rules/chat")
    stale = client.post("/v1/accounts/u1/rules/accept", json={"version": "1"}, headers=chat.headers)
    assert stale.status_code == 409
    accepted = client.post("/v1/accounts/u1/rules/accept", json={"version": "2"}, headers=chat.headers)
    assert accepted.status_code == 200
    assert (
        client.post("/v1/generations", json={"user": "u1", "input": "hi"}, headers=chat.headers).status_code
        == 201
    )


def test_dsp8_rules_public_page_shows_versions_and_filing(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey
) -> None:
    with gateway.db.session() as session:
        rules.publish(
            session, chat.service, version="2", title="用户协议", body="第一条 <script>x</script>", actor="t"
        )
    page = client.get("/rules/chat")
    assert page.status_code == 200
    assert "用户协议" in page.text and "第一条" in page.text
    assert "<script>x</script>" not in page.text  # escaped, not executed
    assert (
        "Beijing-XXX-202601010001" in page.text and "https://beian.example.cn/notice/1" in page.text
    )  # DSP-19
    old = client.get("/rules/chat?version=1")
    assert old.status_code == 200 and "not the current version" in old.text
    assert client.get("/rules/nope").status_code == 404


def test_dsp8_versions_are_immutable(gateway: Gateway, chat: ServiceWithKey) -> None:
    import pytest

    from synthgate.errors import Conflict, InvalidInput

    with gateway.db.session() as session:
        with pytest.raises(Conflict):
            rules.publish(session, chat.service, version="1", title="again", body="changed", actor="t")
        with pytest.raises(InvalidInput):
            rules.publish(session, chat.service, version="bad version", title="t", body="b", actor="t")
