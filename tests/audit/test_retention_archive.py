"""Retention of the audit log itself: an expired month's events are dropped (PostgreSQL: the whole
monthly partition; SQLite: the rows), their leaf hashes archived, the events that must stay kept,
and the log, its proofs and its tamper detection still work (CSL-21 ≥ 6 months, GAI-11 deletion)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text, update

from synthgate.audit import service as audit
from synthgate.audit.merkle import verify_consistency, verify_inclusion
from synthgate.audit.models import AuditArchivedLeaf, AuditEvent
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from synthgate.provenance import partitions
from tests.conftest import IS_POSTGRES

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
OLD = dt.datetime(2025, 12, 10, tzinfo=dt.UTC)  # its month ended > 190 days before NOW
RECENT = NOW - dt.timedelta(days=20)


def _partition_exists(gateway: Gateway, name: str) -> bool:
    with gateway.db.engine.connect() as conn:
        found = conn.execute(text("SELECT to_regclass(:n)"), {"n": f"{partitions.SCHEMA}.{name}"}).scalar()
    return found is not None


def _events(gateway: Gateway) -> dict[str, int]:
    """Writes events, moves some into the old month before they are integrated; returns their ids."""
    ids: dict[str, int] = {}
    with gateway.db.session() as session:
        for i in range(12):
            event = audit.record(session, "pipeline.check", actor="service:s", subject_id=f"acc{i % 3}")
            session.flush()
            ids[f"old{i}"] = event.id
        for name, event_type, subject in (
            ("held", "pipeline.check", "held1"),
            ("own", "audit.hold_released", "9"),
            ("recent", "pipeline.check", "acc1"),
        ):
            event = audit.record(session, event_type, actor="service:s", subject_id=subject)
            session.flush()
            ids[name] = event.id
        old_ids = [v for k, v in ids.items() if k != "recent"]
        # The time is part of the leaf, so it is moved before the sequencer hashes the events.
        session.execute(update(AuditEvent).where(AuditEvent.id.in_(old_ids)).values(created_at=OLD))
        session.execute(update(AuditEvent).where(AuditEvent.id == ids["recent"]).values(created_at=RECENT))
        audit.place_hold(session, case_id="case-7", subject_id="held1", reason="complaint", actor="t")
    return ids


def test_csl21_gai11_an_expired_month_of_the_log_is_dropped_its_leaf_hashes_kept(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        partitions.ensure_partitions(session.connection(), start=OLD.date(), today=NOW.date())
    ids = _events(gateway)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        before = audit.latest_checkpoint(session)
        assert before is not None
        old_index = session.scalar(select(AuditEvent.leaf_index).where(AuditEvent.id == ids["old3"]))
    assert old_index is not None
    if IS_POSTGRES:
        assert _partition_exists(gateway, "audit_events_p2025_12")

    policy = audit.RetentionPolicy.from_settings(190, {})
    with gateway.db.session() as session:
        result = audit.purge(session, policy, now=NOW)
    assert result.events == 12 and result.archived == 12
    integrate_and_checkpoint(gateway)

    with gateway.db.session() as session:
        left = set(session.scalars(select(AuditEvent.id)))
        archived = session.scalar(select(func.count()).select_from(AuditArchivedLeaf))
        report = audit.verify(session, audit_signer(gateway).verifier())
        proof = audit.inclusion(session, old_index)
        after = audit.latest_checkpoint(session)
        assert after is not None
        consistency = audit.consistency(session, before.size)
    assert report.ok, report.problems
    assert report.purged == 12
    assert archived == 12
    # The twelve expired events are gone; the held one, the log's own event and the recent one stay.
    assert not any(ids[f"old{i}"] in left for i in range(12))
    assert {ids["held"], ids["own"], ids["recent"]} <= left
    if IS_POSTGRES:
        assert not _partition_exists(gateway, "audit_events_p2025_12")
    # An archived leaf still has its inclusion proof (the hash, no payload), and the tree only grew.
    assert proof["entry"] is None
    assert verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        old_index,
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(after.root),
    )
    assert verify_consistency(
        before.size,
        after.size,
        bytes.fromhex(before.root),
        bytes.fromhex(after.root),
        [bytes.fromhex(p) for p in consistency["proof"]],
    )


def test_csl21_an_archived_leaf_hash_cannot_be_edited_or_removed_unnoticed(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        partitions.ensure_partitions(session.connection(), start=OLD.date(), today=NOW.date())
    _events(gateway)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        audit.purge(session, audit.RetentionPolicy.from_settings(190, {}), now=NOW)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        victim = session.scalar(select(func.min(AuditArchivedLeaf.leaf_index)))
        original = session.get(AuditArchivedLeaf, victim)
        assert original is not None
        digest = original.leaf_hash
    verifier = audit_signer(gateway).verifier()
    with gateway.db.engine.begin() as conn:
        flipped = ("0" if digest[5] != "0" else "1").join([digest[:5], digest[6:]])
        conn.execute(
            text("UPDATE audit_archived_leaves SET leaf_hash = :h WHERE leaf_index = :i"),
            {"h": flipped, "i": victim},
        )
    with gateway.db.session() as session:
        edited = audit.verify(session, verifier)
    # A purged leaf has no payload to recompute: the signed checkpoints catch the edit, located to
    # the interval between the last checkpoint that still verifies and the first that does not.
    assert not edited.ok and edited.first_bad_index is not None, edited.problems
    assert edited.first_bad_index <= victim
    with gateway.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_archived_leaves WHERE leaf_index = :i"), {"i": victim})
    with gateway.db.session() as session:
        removed = audit.verify(session, verifier)
    assert not removed.ok and removed.first_bad_index == victim, removed.problems
