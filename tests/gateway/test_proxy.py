"""The OpenAI-compatible proxy against a real upstream process on loopback."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.audit.models import AuditEvent
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.devtools.upstream import run_upstream_process
from synthgate.gateway.models import Refusal
from synthgate.gateway.sdk import Gateway
from synthgate.labeling.text import is_conformant_label
from synthgate.provenance.models import Generation
from tests.conftest import free_port, make_service, ready_user


def _events(response_lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for line in response_lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


def test_dsp17_proxy_labels_answer_and_records(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    chat = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, chat.service)
    response = client.post(
        "/v1/chat/completions",
        json={"model": "echo", "user": "u1", "messages": [{"role": "user", "content": "你好"}]},
        headers=chat.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    assert content.startswith("Echo: 你好")
    assert is_conformant_label(content[len("Echo: 你好") :])
    produce_id = body["synthgate"]["produce_id"]
    assert response.headers["X-Synthgate-Produce-Id"] == produce_id
    assert body["synthgate"]["filing"]["number"] == chat.service.filing_number
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert record is not None and record.mode == "proxy" and not record.streamed


def test_dsp17_streamed_answer_carries_label(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    chat = make_service(gateway, upstream_url=upstream, label_position="both")
    ready_user(gateway, sms, chat.service)
    prompt = "stream me a somewhat longer answer with many words in it"
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": prompt}]},
        headers={**chat.headers, "X-Synthgate-User": "u1"},
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = _events(lines)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    label = "【本内容由人工智能生成】"
    assert text == f"{label}\nEcho: {prompt}\n{label}"
    assert len([e for e in events if e["choices"][0]["delta"].get("content")]) > 3, "not really streamed"
    final = events[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    produce_id = final["synthgate"]["produce_id"]
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert record is not None and record.streamed
        assert record.verdicts["output_screening"]["streamed"] is True
        events = session.scalars(
            select(AuditEvent.event_type).where(AuditEvent.subject_id == produce_id)
        ).all()
        assert events.count("pipeline.output_screening") == 1 and "pipeline.record" in events


def test_dsp10_stream_stops_before_a_blocked_term_is_sent(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender
) -> None:
    with run_upstream_process(reply="harmless words then the forbidden-term and more words after") as url:
        chat = make_service(gateway, upstream_url=url)
        ready_user(gateway, sms, chat.service)
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"stream": True, "user": "u1", "messages": [{"role": "user", "content": "go"}]},
            headers=chat.headers,
        ) as response:
            lines = [line for line in response.iter_lines() if line]
    events = _events(lines)
    sent = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    assert "forbidden" not in sent
    assert "forbidden-term"[:3] not in sent[len("harmless words then the") :]
    assert events[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert events[-1]["synthgate"]["refusal"]["reason"] == "moderation.blocked"
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0
        refusal = session.scalar(select(Refusal))
        assert refusal is not None and refusal.reason == "moderation.blocked"


def test_proxy_refusals_and_errors_are_clear(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    chat = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, chat.service)
    messages = [{"role": "user", "content": "hello"}]

    unknown = client.post(
        "/v1/chat/completions", json={"messages": messages, "user": "nobody"}, headers=chat.headers
    )
    assert unknown.status_code == 403
    assert unknown.json()["error"]["code"] == "identity.unknown_account"

    no_user = client.post("/v1/chat/completions", json={"messages": messages}, headers=chat.headers)
    assert no_user.status_code == 422 and no_user.json()["error"]["param"] == "user"

    bad_json = client.post(
        "/v1/chat/completions",
        content=b"{not json",
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422

    no_key = client.post("/v1/chat/completions", json={"messages": messages, "user": "u1"})
    assert no_key.status_code == 401

    blocked = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "say 违禁词"}], "user": "u1"},
        headers=chat.headers,
    )
    assert blocked.status_code == 403
    assert blocked.json()["error"]["reason"] == "moderation.blocked"


def test_proxy_upstream_down_is_502_and_nothing_recorded(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender
) -> None:
    chat = make_service(gateway, upstream_url=f"http://127.0.0.1:{free_port()}/v1")
    ready_user(gateway, sms, chat.service)
    response = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "user": "u1"},
        headers=chat.headers,
    )
    assert response.status_code == 502
    assert "upstream" in response.json()["error"]["message"]
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0
