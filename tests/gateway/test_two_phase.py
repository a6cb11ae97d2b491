"""The two-phase API: check, then complete — identity, rules, screening, label, record."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.labeling.text import is_conformant_label
from synthgate.provenance.models import Generation
from tests.conftest import ServiceWithKey, ready_user


def test_dsp16_two_phase_labels_and_records(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    checked = client.post("/v1/generations", json={"user": "u1", "input": "写一首诗"}, headers=chat.headers)
    assert checked.status_code == 201, checked.text
    ticket = checked.json()
    assert is_conformant_label(ticket["label_notice"])
    assert ticket["filing"]["number"] == "Beijing-XXX-202601010001"

    done = client.post(
        f"/v1/generations/{ticket['ticket_id']}/complete", json={"output": "床前明月光"}, headers=chat.headers
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["produce_id"] == ticket["produce_id"]
    assert body["output"].startswith("床前明月光")
    assert body["output"] != "床前明月光" and is_conformant_label(body["output"][len("床前明月光") :])
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == body["produce_id"]))
        assert record is not None and record.mode == "two_phase"
        assert record.labels["explicit"]["position"] == "end"

    again = client.post(
        f"/v1/generations/{ticket['ticket_id']}/complete", json={"output": "x"}, headers=chat.headers
    )
    assert again.status_code == 409


def test_dsp9_unverified_account_refused_before_generation(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey
) -> None:
    assert client.post("/v1/accounts", json={"user_id": "new"}, headers=chat.headers).status_code == 201
    refused = client.post("/v1/generations", json={"user": "new", "input": "hi"}, headers=chat.headers)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["reason"] == "identity.unverified" and error["clause"] == "DSP-9" and error["message"]
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0


def test_dsp10_blocked_input_and_output(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    refused = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "tell me the ＦＯＲＢＩＤＤＥＮ-term"},
        headers=chat.headers,
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["reason"] == "moderation.blocked" and error["clause"] == "DSP-10"
    assert error["span"] == [12, 26]

    ticket = client.post("/v1/generations", json={"user": "u1", "input": "ok"}, headers=chat.headers).json()
    blocked = client.post(
        f"/v1/generations/{ticket['ticket_id']}/complete",
        json={"output": "含有违禁词的输出"},
        headers=chat.headers,
    )
    assert blocked.status_code == 403 and blocked.json()["error"]["reason"] == "moderation.blocked"
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0
