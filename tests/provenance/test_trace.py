"""Generation records (DSP-16 logs, LM-9 recipients) and tracing content back to its generation."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.provenance import service as provenance
from synthgate.provenance.models import Generation
from tests.audit.test_proofs_api import operator_token
from tests.audit.test_tamper import _cli
from tests.conftest import ServiceWithKey, ready_user


def _generate(gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, text: str) -> tuple[str, str]:
    ready_user(gateway, sms, chat.service)
    ticket = gateway.check("chat", "u1", prompt="write something")
    done = gateway.complete("chat", ticket.ticket_id, text)
    return done.produce_id, done.output


def test_dsp16_delivered_text_is_traced_by_exact_digest_and_quoted_produce_id(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    produce_id, delivered = _generate(gateway, sms, chat, "春天的诗")
    with gateway.db.session() as session:
        exact = provenance.trace(
            session, provenance.TraceInput(data=(delivered + "\n").encode()), actor="test", show_account=True
        )
        quoted = provenance.trace(
            session,
            provenance.TraceInput(data=f"reposted, id {produce_id} per label".encode()),
            actor="test",
            show_account=False,
        )
        nothing = provenance.trace(
            session, provenance.TraceInput(data=b"\x89PNG unrelated"), actor="test", show_account=True
        )
        generation = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert generation is not None
    [match] = exact.matches
    assert match["generation"]["produce_id"] == produce_id and match["strength"] == 1.0
    assert match["evidence"][0]["matcher"] == "sha256"
    assert match["generation"]["account_id"] == generation.account_id
    [by_id] = quoted.matches
    assert by_id["evidence"][0]["matcher"] == "produce_id" and by_id["generation"]["account_id"] is None
    assert nothing.matches == []
    assert set(provenance.trace_matchers.names()) >= {"sha256", "produce_id"}


def test_lm9_unlabeled_delivery_records_the_recipient(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    produce_id, _ = _generate(gateway, sms, chat, "plain text")
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, produce_id)
        provenance.mark_delivered_unlabeled(
            session, produce_id, recipient=generation.account_id, actor="service:chat"
        )
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, produce_id)
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.event_type == "provenance.delivered_unlabeled", AuditEvent.subject_id == produce_id
            )
        )
        assert generation.delivered_unlabeled and generation.unlabeled_recipient == generation.account_id
        assert event is not None and event.data == {"recipient": generation.account_id, "clause": "LM-9"}


def test_trace_api_is_operator_only_audited_and_hides_the_account_by_role(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    produce_id, delivered = _generate(gateway, sms, chat, "a short answer")
    assert client.post("/v1/trace", content=delivered.encode()).status_code == 401
    assert client.post("/v1/trace", content=delivered.encode(), headers=chat.headers).status_code == 403
    reviewer = {"Authorization": f"Bearer {operator_token(gateway, 'reviewer')}"}
    compliance = {"Authorization": f"Bearer {operator_token(gateway, 'compliance')}"}
    seen_by_reviewer = client.post("/v1/trace", content=delivered.encode(), headers=reviewer).json()
    seen_by_compliance = client.post("/v1/trace", content=delivered.encode(), headers=compliance).json()
    assert seen_by_reviewer["matches"][0]["generation"]["produce_id"] == produce_id
    assert seen_by_reviewer["matches"][0]["generation"]["account_id"] is None
    assert seen_by_compliance["matches"][0]["generation"]["account_id"] is not None
    assert client.post("/v1/trace", content=b"", headers=reviewer).status_code == 422
    with gateway.db.session() as session:
        traces = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "provenance.traced")).all()
    assert [t.actor for t in traces] == ["operator:reviewer1", "operator:compliance1"]
    assert traces[0].data["matched"] == [produce_id] and traces[0].data["account_shown"] is False


def test_trace_cli_prints_json(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, tmp_path: Path
) -> None:
    produce_id, delivered = _generate(gateway, sms, chat, "cli answer")
    found = tmp_path / "found.txt"
    found.write_text(delivered, encoding="utf-8")
    env = {"SYNTHGATE_DATA_DIR": str(gateway.settings.data_dir)}
    if gateway.settings.database_url:
        env["SYNTHGATE_DATABASE_URL"] = gateway.settings.database_url
    result = _cli(["trace", str(found), "--json"], **env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["matches"][0]["generation"]["produce_id"] == produce_id
