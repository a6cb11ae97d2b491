"""Retention of generation records: whole months dropped on PostgreSQL, rows deleted on SQLite,
legal holds kept either way, and the audit log still verifies (CSL-21 minimum, GAI-11 maximum)."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import func, select, text, update

from synthgate.audit import service as audit
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint, partition_maintenance
from synthgate.provenance import partitions
from synthgate.provenance import service as provenance
from synthgate.provenance.models import Generation, GenerationDigest
from tests.conftest import IS_POSTGRES, ServiceWithKey, ready_user

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
OLD_MONTH = dt.datetime(2025, 12, 10, tzinfo=dt.UTC)  # > 184 days before NOW
HELD_MONTH = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def _image_generation(gateway: Gateway, user: str, when: dt.datetime) -> str:
    """A real generation with digest rows (an image), moved back to ``when``."""
    from tests.provenance.test_trace_media import _png, samples

    ticket = gateway.check("chat", user, prompt="an image", medium="image")
    done = gateway.complete("chat", ticket.ticket_id, media=[_png(samples.camera())])
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, done.produce_id)
        # Updating the partition key moves the row to that month's partition on PostgreSQL.
        session.execute(update(Generation).where(Generation.id == generation.id).values(created_at=when))
        session.execute(
            update(GenerationDigest)
            .where(GenerationDigest.generation_id == generation.id)
            .values(created_at=when)
        )
    return done.produce_id


def _partition_exists(gateway: Gateway, name: str) -> bool:
    with gateway.db.engine.connect() as conn:
        return (
            conn.execute(text("SELECT to_regclass(:n)"), {"n": f"{partitions.SCHEMA}.{name}"}).scalar()
            is not None
        )


def test_gai11_csl21_expired_generations_are_purged_by_month_held_ones_kept(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    with gateway.db.session() as session:
        partitions.ensure_partitions(session.connection(), start=OLD_MONTH.date(), today=NOW.date())
    ready_user(gateway, sms, chat.service, "held")
    ready_user(gateway, sms, chat.service, "free")
    expired = _image_generation(gateway, "free", OLD_MONTH)
    expired_next = _image_generation(gateway, "free", HELD_MONTH)
    held = _image_generation(gateway, "held", HELD_MONTH)
    recent = _image_generation(gateway, "free", NOW - dt.timedelta(days=30))
    if IS_POSTGRES:
        assert _partition_exists(gateway, "generations_p2025_12")
    with gateway.db.session() as session:
        held_account = provenance.get_generation(session, held).account_id
        audit.place_hold(session, case_id="case-1", subject_id=held_account, reason="complaint", actor="t")
    integrate_and_checkpoint(gateway)
    policy = audit.RetentionPolicy.from_settings(190, {"generations": 184})
    with gateway.db.session() as session:
        result = audit.purge(session, policy, now=NOW)
    assert result.generations == 2
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        left = set(session.scalars(select(Generation.produce_id)))
        digests_left = session.scalar(select(func.count()).select_from(GenerationDigest))
        generations_of = {
            g.produce_id: g.id
            for g in session.scalars(select(Generation).where(Generation.produce_id.in_(left)))
        }
        orphans = session.scalar(
            select(func.count())
            .select_from(GenerationDigest)
            .where(GenerationDigest.generation_id.not_in(list(generations_of.values())))
        )
        report = audit.verify(session, audit_signer(gateway).verifier())
    assert left == {held, recent} and expired not in left and expired_next not in left
    assert digests_left and orphans == 0
    assert report.ok, report.problems
    if IS_POSTGRES:
        # The fully expired month went as a whole (both tables); the month a hold reaches into
        # stays, with only the held record left in it.
        assert not _partition_exists(gateway, "generations_p2025_12")
        assert not _partition_exists(gateway, "generation_digests_p2025_12")
        assert _partition_exists(gateway, "generations_p2026_01")


def test_generations_are_partitioned_by_month_on_postgres_and_plain_on_sqlite(gateway: Gateway) -> None:
    if IS_POSTGRES:
        _postgres_tables_are_partitioned_by_month_and_months_are_created_ahead(gateway)
    else:
        _sqlite_keeps_plain_tables(gateway)


def _postgres_tables_are_partitioned_by_month_and_months_are_created_ahead(gateway: Gateway) -> None:
    with gateway.db.engine.connect() as conn:
        expected = {"generations", "generation_digests", "audit_events"}
        assert set(partitions.partitioned_tables(conn)) >= expected
        pk = conn.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_generations'")
        ).scalar()
    assert pk == "PRIMARY KEY (id, created_at)"
    created = partition_maintenance(gateway)
    assert created == []  # the migration already made the months around now
    with gateway.db.session() as session:
        far = partitions.ensure_partitions(
            session.connection(), today=dt.date.today() + dt.timedelta(days=200)
        )
        again = partitions.ensure_partitions(
            session.connection(), today=dt.date.today() + dt.timedelta(days=200)
        )
        months = partitions.month_partitions(session.connection(), "generations")
    assert far and again == []
    assert all(a.end <= b.start for a, b in itertools.pairwise(months))  # no overlaps
    assert all(28 <= (m.end - m.start).days <= 31 and m.start.day == 1 for m in months)


def _sqlite_keeps_plain_tables(gateway: Gateway) -> None:
    with gateway.db.engine.connect() as conn:
        sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'generations'")).scalar()
        assert "PARTITION" not in str(sql).upper()
        assert partitions.ensure_partitions(conn) == []
