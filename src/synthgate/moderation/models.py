"""Tables of the feature library (DSP-10, TC-8.1) and the per-service moderation policies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class LibraryEntry(Base):
    """One term, pattern, known-content hash or allow-list term, with its admission record.

    An entry is proposed (``pending``), approved by a second person (``approved``) and takes
    effect with the next published version (``added_in_version``); retiring it ends it with the
    version after (``retired_in_version``). Rows are never deleted, so every past version can be
    rebuilt and every verdict traced to the entry that fired.
    """

    __tablename__ = "moderation_library_entries"
    __table_args__ = (Index("ix_moderation_library_entries_kind_value", "kind", "value_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    """term | pattern | sha256 | pdq | allow"""
    value: Mapped[str] = mapped_column(Text)
    value_key: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the value: an indexable key for values of any length."""
    category: Mapped[str] = mapped_column(String(32), index=True)
    """A TC-A risk code (A.1.1 … A.5.2) or a deployment-defined category."""
    severity: Mapped[int] = mapped_column(Integer, default=5)
    source: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """pending | approved | rejected | retired"""
    admitted_by: Mapped[str] = mapped_column(String(200))
    admitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    admission_reason: Mapped[str] = mapped_column(Text, default="")
    admission_rule: Mapped[str] = mapped_column(String(200), default="")
    """The admission standard the entry was admitted under (e.g. a clause of the library rules)."""
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_note: Mapped[str] = mapped_column(Text, default="")
    added_in_version: Mapped[int | None] = mapped_column(Integer, index=True)
    retired_in_version: Mapped[int | None] = mapped_column(Integer)
    retire_requested: Mapped[bool] = mapped_column(default=False)


class LibraryVersion(Base):
    """A published state of the library; workers compare the newest number with what they run."""

    __tablename__ = "moderation_library_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    entries: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[int] = mapped_column(Integer, default=0)


class ModerationPolicy(Base):
    """A version of one service's policy (``service_id`` null: the deployment default)."""

    __tablename__ = "moderation_policies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str | None] = mapped_column(ForeignKey("services.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
