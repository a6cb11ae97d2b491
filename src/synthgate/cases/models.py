"""Complaints, cases, decisions, actions, appeals, refutations and reports to the authority.

A *complaint* is one member of the public's report; complaints about the same content under the
same category are merged into one *case*, which the reviewers triage, decide and act on. A
*decision* carries its statement of reasons; the *actions* it led to (takedown, refutation,
sanction, report) are recorded one by one so an appeal that overturns the decision can revert
exactly what was done. Personal data (the complainant's description and contact) is kept
encrypted; the tracking number only as a keyed hash.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dedupe_key: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of category + the content concerned: a second complaint about it joins this case."""
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    """``open`` → ``decided`` (→ ``appealed`` → ``decided``); ``closed`` once nothing is pending."""
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    complaints: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    due_at: Mapped[dt.datetime] = mapped_column()
    deadline_provisional: Mapped[bool] = mapped_column(default=False)
    """The holiday calendar did not cover every day up to the deadline (weekends assumed)."""
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    decided_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    content_kind: Mapped[str] = mapped_column(String(16))
    """``upload``, ``url`` or ``produce_id``."""
    content_url: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    content_container: Mapped[str | None] = mapped_column(String(16))
    produce_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The generation behind the content, when tracing found it."""
    account_id: Mapped[str | None] = mapped_column(String(32), index=True)
    service_id: Mapped[str | None] = mapped_column(String(32))
    links: Mapped[list[Any]] = mapped_column(default=list)
    """Every generation tracing found, with its evidence (matcher, strength)."""


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    tracking_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    """Keyed hash of the tracking number: the number itself is only ever shown to the complainant."""
    challenge_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    """The anti-spam token it was sent with; each token is good for one complaint."""
    client_lookup: Mapped[str] = mapped_column(String(64), index=True)
    """Keyed hash of the client address, for the rate limit (never the address itself)."""
    category: Mapped[str] = mapped_column(String(32))
    description_enc: Mapped[str] = mapped_column(Text)
    contact_enc: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    """``web`` or ``api``."""
    merged: Mapped[bool] = mapped_column(default=False)
    """Joined an existing case about the same content."""
    evidence_path: Mapped[str | None] = mapped_column(String(200))
    """The uploaded file, encrypted, under the blob directory."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Decision(Base):
    __tablename__ = "case_decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    appeal_id: Mapped[str | None] = mapped_column(String(32))
    """Set on the decision that answered an appeal."""
    outcome: Mapped[str] = mapped_column(String(16))
    """``violation`` or ``no_violation`` (for an appeal: ``upheld`` or ``overturned``)."""
    decided_by: Mapped[str] = mapped_column(String(200))
    statement: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Statement of reasons: ground, category, facts, automated detection / decision, source."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    overturned_at: Mapped[dt.datetime | None] = mapped_column()


class CaseAction(Base):
    __tablename__ = "case_actions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("case_decisions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    """``takedown``, ``refutation``, ``sanction`` or ``authority_report``."""
    status: Mapped[str] = mapped_column(String(16), default="applied")
    """``applied`` or ``reverted``."""
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    reverted_at: Mapped[dt.datetime | None] = mapped_column()


class Appeal(Base):
    __tablename__ = "case_appeals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("case_decisions.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    grounds_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    """``open``, ``upheld`` or ``overturned``."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    due_at: Mapped[dt.datetime] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    escalated_at: Mapped[dt.datetime | None] = mapped_column()


class Refutation(Base):
    """A published refutation of false information (DSP-11), linked to the content it answers."""

    __tablename__ = "case_refutations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    content_ref: Mapped[str] = mapped_column(String(200))
    """What it refutes: a produce id, the content's SHA-256 or its URL."""
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column()


class AuthorityReport(Base):
    """A report to the authority in the outbox, with its evidence bundle and delivery status."""

    __tablename__ = "case_authority_reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    bundle: Mapped[str] = mapped_column(Text)
    """The signed audit bundle (``synthgate.audit.bundle``) of the case's events."""
    transport: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """``pending``, ``delivered`` or ``failed`` (retried until delivered)."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column()


class Notice(Base):
    """A templated message to the complainant or the affected user, kept with its delivery status."""

    __tablename__ = "case_notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(16))
    """``complainant`` or ``user``."""
    recipient_ref: Mapped[str] = mapped_column(String(64))
    """A complaint id or an account id (never an address)."""
    template: Mapped[str] = mapped_column(String(40))
    notifier: Mapped[str] = mapped_column(String(32))
    address_enc: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(300))
    body_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
