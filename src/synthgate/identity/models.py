"""End-user accounts, their verifications (DSP-9) and status history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("service_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    """The provider's own user id."""
    kind: Mapped[str] = mapped_column(String(16), default="person")
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_until: Mapped[dt.datetime | None] = mapped_column()
    restrictions: Mapped[list[Any]] = mapped_column(default=list)
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    verification_method: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Verification(Base):
    """One completed verification. The verified identifier is kept encrypted, found by keyed hash."""

    __tablename__ = "verifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    verifier: Mapped[str] = mapped_column(String(64))
    subject_enc: Mapped[str] = mapped_column(Text)
    subject_lookup: Mapped[str] = mapped_column(String(64), index=True)
    name_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OtpChallenge(Base):
    __tablename__ = "otp_challenges"
    __table_args__ = (Index("ix_otp_challenges_phone_created", "phone_lookup", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_lookup: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    consumed_at: Mapped[dt.datetime | None] = mapped_column()


class AccountStatusChange(Base):
    __tablename__ = "account_status_changes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    restrictions: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
