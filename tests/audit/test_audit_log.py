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
    # Every event is a configured stage's record (stages with nothing to say for a text, such as
    # consent, leave none), in pipeline order; these are always there for a text generation.
    assert all(t.removeprefix("pipeline.") in {*gateway.settings.stages, "ticket"} for t in types), types
    core = [
        "pipeline.identity",
        "pipeline.rules",
        "pipeline.input_screening",
        "pipeline.ticket",
        "pipeline.output_screening",
        "pipeline.explicit_label",
        "pipeline.record",
    ]
    assert [t for t in types if t in core] == core


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


def test_csl21_batched_appends_keep_order_content_and_verify(gateway: Gateway) -> None:
    events = [
        {
            "event_type": "bench.batch",
            "actor": "system",
            "subject_type": "produce_id",
            "subject_id": f"p{i}",
            "data": {"i": i, "text": '标识 "quoted" \\ \n', "nested": {"z": [1, 2.5, None], "a": True}},
        }
        for i in range(60)  # above COPY_MIN_ROWS: the COPY path on PostgreSQL
    ]
    with gateway.db.session() as session:
        assert audit.record_many(session, events[:5]) == 5  # the multi-row INSERT path
        assert audit.record_many(session, events[5:]) == 55
        assert audit.record_many(session, []) == 0
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        stored = session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == "bench.batch").order_by(AuditEvent.id)
        ).all()
        assert [e.data for e in stored] == [e["data"] for e in events]
        assert [e.subject_id for e in stored] == [f"p{i}" for i in range(60)]
        indexes = [e.leaf_index for e in stored]
        assert indexes == sorted(indexes) and None not in indexes
    assert _verify(gateway).ok
    with gateway.db.session() as session:
        for bad in ({"actor": "system"}, {"event_type": "x", "actor": "s", "personal": {"phone": "1"}}):
            try:
                audit.record_many(session, [bad])
            except ValueError:
                continue
            raise AssertionError(f"accepted {bad}")


def test_csl21_equal_json_in_another_spelling_verifies_a_changed_value_does_not(
    gateway: Gateway,
) -> None:
    """Verification hashes the stored text directly when it is canonical and re-encodes it
    otherwise: a re-spelled but equal value is not an edit, a changed value is."""
    with gateway.db.session() as session:
        audit.record_many(
            session,
            [{"event_type": "t.e", "actor": "system", "data": {"a": "x", "b": i}} for i in range(3)],
        )
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        target = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "t.e")).all()[1]
        raw = session.execute(
            text("SELECT CAST(data AS TEXT) FROM audit_events WHERE id = :i"), {"i": target.id}
        )
        assert raw.scalar() == '{"a":"x","b":1}'  # the engine writes the canonical spelling
        session.execute(
            text("UPDATE audit_events SET data = :d WHERE id = :i"),
            {"d": '{ "b": 1,  "a": "x" }', "i": target.id},
        )
    assert _verify(gateway).ok
    with gateway.db.session() as session:
        session.execute(
            text("UPDATE audit_events SET data = :d WHERE id = :i"),
            {"d": '{"b": 2, "a": "x"}', "i": target.id},
        )
    report = _verify(gateway)
    assert not report.ok and report.first_bad_index == target.leaf_index


def test_csl21_concurrent_sequencers_and_writers_never_share_or_skip_an_index(gateway: Gateway) -> None:
    """Sequencers plan outside the lock and write only if the tree did not move meanwhile: with
    three of them racing four writers, every event gets exactly one index and the log verifies."""
    import threading

    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(15):
                with gateway.db.session() as session:
                    audit.record_many(
                        session,
                        [
                            {"event_type": "t.race", "actor": f"w{n}", "data": {"b": batch, "i": i}}
                            for i in range(25)
                        ],
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def sequencer() -> None:
        try:
            while not stop.is_set():
                audit.integrate_all(gateway.db.sessions, batch=40)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    sequencers = [threading.Thread(target=sequencer) for _ in range(3)]
    for thread in writers + sequencers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sequencers:
        thread.join()
    assert not errors, errors
    audit.integrate_all(gateway.db.sessions)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        indexes = list(session.scalars(select(AuditEvent.leaf_index).order_by(AuditEvent.leaf_index)))
    assert len(indexes) >= 4 * 15 * 25 and indexes == list(range(len(indexes)))
    report = _verify(gateway)
    assert report.ok and report.pending == 0, report.problems
