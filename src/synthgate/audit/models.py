"""The audit log: events (leaves), the tree's frontier, and signed checkpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One compliance-relevant event. ``leaf_index`` is assigned when the sequencer integrates it.

    Events are written in the same transaction as the change they describe; the sequencer later
    gives them contiguous leaf indexes, so a rolled-back transaction never leaves a gap in the tree.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    """``operator:<name>``, ``service:<slug>``, ``account:<id>``, ``system``, ``cli:<user>``."""
    service_id: Mapped[str | None] = mapped_column(String(32), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[str | None] = mapped_column(String(100), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    leaf_hash: Mapped[str | None] = mapped_column(String(64))


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
