"""A fault injected between any two stages leaves no half-written generation and a log that verifies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.audit.models import AuditEvent
from synthgate.config import Settings
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.models import Ticket
from synthgate.gateway.pipeline import GenerationContext, Phase, build_stages
from synthgate.gateway.sdk import Gateway
from synthgate.gateway.service import PipelineFailure
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from synthgate.provenance.models import Generation
from synthgate.web.app import create_app
from tests.conftest import make_service, ready_user

STAGE_NAMES = Settings().stages


class InjectedFault(RuntimeError):
    pass


class FailingStage:
    name = "injected_fault"

    def __init__(self, phase: Phase) -> None:
        self.phase = phase
        self.calls = 0

    def run(self, ctx: GenerationContext, session: Session) -> None:
        self.calls += 1
        session.flush()  # make sure earlier stages' writes really reached the database first
        raise InjectedFault("injected between stages")


def _pipeline_with_fault(position: int) -> tuple[list, FailingStage]:
    pipeline = build_stages(STAGE_NAMES)
    phase: Phase = pipeline[position - 1].phase if position > 0 else "check"
    if position < len(pipeline) and position > 0 and pipeline[position].phase != phase:
        phase = pipeline[position].phase  # on the phase boundary: fail at the start of "complete"
    fault = FailingStage(phase)
    pipeline.insert(position, fault)
    return pipeline, fault


def _assert_log_verifies(gateway: Gateway) -> None:
    integrate_and_checkpoint(gateway)
    signer = audit_signer(gateway)
    with gateway.db.session() as session:
        report = audit.verify(session, NoteVerifier.from_vkey(signer.vkey()))
    assert report.ok, report.problems
    assert report.pending == 0 and report.size > 0


@pytest.mark.parametrize("position", range(len(STAGE_NAMES) + 1))
def test_fault_between_stages_two_phase(settings: Settings, sms: CapturingSmsSender, position: int) -> None:
    pipeline, fault = _pipeline_with_fault(position)
    gateway = Gateway(settings, pipeline=pipeline, sms_sender=sms)
    try:
        chat = make_service(gateway)
        ready_user(gateway, sms, chat.service)
        with pytest.raises(PipelineFailure) as failure:
            ticket = gateway.check("chat", "u1", prompt="hello")
            gateway.complete("chat", ticket.ticket_id, "world")
        assert fault.calls == 1
        assert "nothing was generated or recorded" in failure.value.message
        with gateway.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Generation)) == 0
            tickets = session.scalars(select(Ticket)).all()
            if fault.phase == "check":
                assert tickets == []
            else:
                assert all(t.completed_at is None for t in tickets)  # the claim was rolled back too
            failed = session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == "pipeline.failed")
            ).all()
            assert len(failed) == 1 and failed[0].data["stage"] == "injected_fault"
            assert failed[0].data["phase"] == fault.phase
            stage_events = session.scalar(
                select(func.count()).where(
                    AuditEvent.event_type.in_([f"pipeline.{n}" for n in ("record", "explicit_label")])
                )
            )
            assert stage_events == 0
        _assert_log_verifies(gateway)
    finally:
        gateway.close()


@pytest.mark.parametrize("position", range(len(STAGE_NAMES) + 1))
def test_fault_between_stages_proxy(
    settings: Settings, sms: CapturingSmsSender, upstream: str, position: int
) -> None:
    pipeline, fault = _pipeline_with_fault(position)
    gateway = Gateway(settings, pipeline=pipeline, sms_sender=sms)
    chat = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, chat.service)
    with TestClient(create_app(settings, gateway)) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"user": "u1", "messages": [{"role": "user", "content": "hello"}]},
            headers=chat.headers,
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "pipeline.failed"
    assert fault.calls == 1
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0
    _assert_log_verifies(gateway)
    gateway.close()
