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
    bank: Mapped[str] = mapped_column(String(64), default="default")
    """For known-content hashes: the named bank the hash belongs to; a service screens against the
    banks it enables (``settings["hash_banks"]``, default ``["default"]``)."""


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


class ReviewItem(Base):
    """Content held for human review (DSP-10): the request waits until a reviewer decides.

    The held content (output text, files) is sealed with the key store (it can carry personal
    data) and dropped once the item is decided and the callback delivered.
    """

    __tablename__ = "moderation_review_items"
    __table_args__ = (Index("ix_moderation_review_items_queue", "status", "level", "priority", "due_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    produce_id: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[str | None] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16))
    """input | output"""
    medium: Mapped[str] = mapped_column(String(16), default="text")
    category: Mapped[str] = mapped_column(String(32), index=True)
    """The decisive finding's category: the queue a reviewer works on."""
    categories: Mapped[list[Any]] = mapped_column(default=list)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    """1 (most urgent) … 5."""
    level: Mapped[int] = mapped_column(Integer, default=1)
    """1: first-line reviewers; 2: escalated to a senior reviewer."""
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """pending | released | withheld"""
    verdict: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The automated verdict that held it (policy, detectors, findings with evidence)."""
    content: Mapped[str | None] = mapped_column(Text)
    """Sealed JSON ``{"text": …, "media": [{"data": base64, "container", "medium"}]}``."""
    media_digests: Mapped[list[Any]] = mapped_column(default=list)
    """sha256 / container / medium / pdq of each held file (kept after the content is dropped)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(index=True)
    """When the policy's review SLA runs out."""
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_category: Mapped[str | None] = mapped_column(String(32))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    callback_url: Mapped[str | None] = mapped_column(String(500))
    callback_status: Mapped[str] = mapped_column(String(16), default="none")
    """none | pending | delivered | failed"""
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_error: Mapped[str] = mapped_column(Text, default="")
