"""Consent subjects, consent requests, signed consent records and encrypted biometric templates (DSP-14)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class ConsentSubject(Base):
    """A person whose face or voice may be edited, known by a verified contact (never in clear)."""

    __tablename__ = "consent_subjects"
    __table_args__ = (
        Index("ix_consent_subjects_service_contact", "service_id", "contact_lookup", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    contact_enc: Mapped[str] = mapped_column(Text)
    contact_lookup: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(32))
    """The identity-domain account the subject verifies through (phone OTP), created on first use."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsentRequest(Base):
    """A user's request that a person consent; the person answers through their own link."""

    __tablename__ = "consent_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("consent_subjects.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    """The provider's user id of whoever asked."""
    operations: Mapped[list[Any]] = mapped_column(default=list)
    purpose: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """Keyed hash of the link's secret; the secret itself is only ever in the subject's message."""
    status: Mapped[str] = mapped_column(String(16), default="sent")
    """sent → verified → consented | declined; or expired."""
    notifier: Mapped[str] = mapped_column(String(64), default="")
    challenge_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    answered_at: Mapped[dt.datetime | None] = mapped_column()


class Consent(Base):
    """The subject's signed consent: which service, which operations, until when, which text."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_service_status", "service_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    subject_id: Mapped[str] = mapped_column(ForeignKey("consent_subjects.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("consent_requests.id"), index=True)
    operations: Mapped[list[Any]] = mapped_column(default=list)
    text_version: Mapped[str] = mapped_column(String(32))
    text_sha256: Mapped[str] = mapped_column(String(64))
    verification_method: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active, revoked or expired."""
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    ended_reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Exactly what was signed (canonical JSON of these fields)."""
    signature: Mapped[str] = mapped_column(Text)
    """Ed25519 over the canonical payload, base64."""


class BiometricTemplate(Base):
    """A face descriptor or voice embedding, AES-GCM encrypted; deleted when its consent ends."""

    __tablename__ = "consent_templates"
    __table_args__ = (Index("ix_consent_templates_service_kind", "service_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    kind: Mapped[str] = mapped_column(String(8))
    """``face`` or ``voice``."""
    vector_enc: Mapped[str] = mapped_column(Text)
    media_enc: Mapped[str | None] = mapped_column(Text)
    """The enrolment photo or recording, only when ``consent_keep_raw_media`` is set."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsentState(Base):
    """A per-service counter bumped by every consent change: workers compare it on each request,
    so a revocation is seen by the next request in every worker without reloading templates."""

    __tablename__ = "consent_state"

    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
