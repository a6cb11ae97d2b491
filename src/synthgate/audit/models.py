"""The audit log: events (leaves), the tree's frontier, and signed checkpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, utcnow
from synthgate.provenance import partitions as _partitions  # noqa: F401 - registers the DDL hooks

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One compliance-relevant event. ``leaf_index`` is assigned when the sequencer integrates it.

    Events are written in the same transaction as the change they describe; the sequencer later
    gives them contiguous leaf indexes, so a rolled-back transaction never leaves a gap in the tree.

    On PostgreSQL the table is partitioned by month (``created_at``): once retention has emptied a
    month's payloads, :func:`synthgate.audit.service.purge` keeps the month's leaf hashes in
    :class:`AuditArchivedLeaf`, moves the events that must stay (the log's own events, legal holds)
    aside and drops the month. The primary key then carries ``created_at`` too on PostgreSQL.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # Unique together with the partition key, which PostgreSQL demands of a partitioned table
        # (the same on SQLite, so the schemas agree); the sequencer alone hands out leaf indexes.
        UniqueConstraint("leaf_index", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    """``operator:<name>``, ``service:<slug>``, ``account:<id>``, ``system``, ``cli:<user>``."""
    service_id: Mapped[str | None] = mapped_column(String(32), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[str | None] = mapped_column(String(100), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger)
    leaf_hash: Mapped[str | None] = mapped_column(String(64))
    purged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """Set when retention dropped the payload: the leaf hash stays, so the tree still verifies."""


class AuditArchivedLeaf(Base):
    """The skeleton of an event whose payload retention removed and whose row was then dropped with
    its month (PostgreSQL) or deleted (SQLite): the leaf hash is all the tree needs.

    Verification reads these in leaf order together with ``audit_events`` and accepts one only
    inside a range that an integrated ``audit.purged`` event announced, as for a purged row.
    """

    __tablename__ = "audit_archived_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime]
    archived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditTree(Base):
    """Single row: the integrated size and the compact-range frontier of the Merkle tree."""

    __tablename__ = "audit_tree"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frontier: Mapped[list[Any]] = mapped_column(default=list)
    root: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditSubjectKey(Base):
    """One data key per data subject for personal data sealed inside audit events (GAI-11).

    Deleting the key (crypto-shredding) makes every sealed value of that subject unreadable
    while the ciphertext, and therefore every leaf hash and checkpoint, stays untouched.
    """

    __tablename__ = "audit_subject_keys"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    """A pseudonymous reference such as ``account:<id>``, never the personal data itself."""
    wrapped_key: Mapped[str | None] = mapped_column(Text)
    """The subject's AES-256 key, encrypted under the key store's wrapping key; NULL once shredded."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class LegalHold(Base):
    """Keeps a subject's records past their retention while a case needs them."""

    __tablename__ = "audit_legal_holds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[str] = mapped_column(String(100), index=True)
    """The ``subject_id`` of held events (an account id, produce id, …); account holds also cover
    events the account acted in and its generation records."""
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column(default=None)
