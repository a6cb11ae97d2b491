"""The audit log: an event per stage and per operator action, integrated into a Merkle tree whose
signed checkpoints catch any edit (DSP-10 / DSP-16 / CSL-21 logs)."""

from __future__ import annotations

import random

from sqlalchemy import select, text, update

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.audit.models import AuditEvent
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from tests.conftest import ServiceWithKey, ready_user


def _verify(gateway: Gateway) -> audit.VerifyReport:
    with gateway.db.session() as session:
        return audit.verify(session, NoteVerifier.from_vkey(audit_signer(gateway).vkey()))


def test_dsp16_every_stage_leaves_an_audit_event(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    ticket = gateway.check("chat", "u1", prompt="hello")
    gateway.complete("chat", ticket.ticket_id, "world")
    with gateway.db.session() as session:
        types = session.scalars(
            select(AuditEvent.event_type)
            .where(AuditEvent.subject_id == ticket.produce_id)
            .order_by(AuditEvent.id)
        ).all()
    assert types == [
        "pipeline.identity",
        "pipeline.rules",
        "pipeline.input_screening",
        "pipeline.ticket",
        "pipeline.output_screening",
        "pipeline.explicit_label",
        "pipeline.record",
    ]


def test_csl21_log_verifies_and_catches_edits(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    for i in range(5):
        ticket = gateway.check("chat", "u1", prompt=f"hello {i}")
        gateway.complete("chat", ticket.ticket_id, f"world {i}")
        integrate_and_checkpoint(gateway)  # several checkpoints at growing sizes
    report = _verify(gateway)
    assert report.ok and report.checkpoints >= 5 and report.size > 30, report

    rng = random.Random(1)
    with gateway.db.session() as session:
        victims = session.scalars(select(AuditEvent).order_by(AuditEvent.leaf_index)).all()
        victim = victims[rng.randrange(len(victims))]
        index = victim.leaf_index
        session.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(actor=victim.actor + "x"))
    broken = _verify(gateway)
    assert not broken.ok and broken.first_bad_index == index

    # Rewriting the leaf hash as well is still caught, by the signed checkpoints.
    with gateway.db.session() as session:
        event = session.get(AuditEvent, victim.id)
        assert event is not None
        event.leaf_hash = audit.leaf_hash(audit.canonical_event_bytes(event)).hex()
    rewritten = _verify(gateway)
    assert not rewritten.ok and rewritten.first_bad_index is not None and rewritten.first_bad_index <= index


def test_csl21_deleted_event_is_caught(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        middle = session.scalars(select(AuditEvent).order_by(AuditEvent.leaf_index)).all()[3]
        session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": middle.id})
    report = _verify(gateway)
    assert not report.ok and report.first_bad_index == 3
