"""Versioned platform rules / service agreements and their acceptance (DSP-8, LM-8)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class RulesVersion(Base):
    __tablename__ = "rules_versions"
    __table_args__ = (UniqueConstraint("service_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    version: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))


class RulesAcceptance(Base):
    __tablename__ = "rules_acceptances"
    __table_args__ = (UniqueConstraint("account_id", "rules_version_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    rules_version_id: Mapped[str] = mapped_column(ForeignKey("rules_versions.id"))
    accepted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
