"""Two-phase tickets and refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class Ticket(Base):
    """A passed check, waiting for the provider's output. Not a generation until completed."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    produce_id: Mapped[str] = mapped_column(String(64), unique=True)
    medium: Mapped[str] = mapped_column(String(16), default="text")
    operation: Mapped[str] = mapped_column(String(64), default="generate")
    model: Mapped[str | None] = mapped_column(String(200))
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_media: Mapped[list[Any]] = mapped_column(default=list)
    """Digests of the checked input files, carried to the generation record."""
    explicit_label_waived: Mapped[bool] = mapped_column(default=False)
    """LM-9: the user asked for the output without the explicit label."""
    input_chars: Mapped[int] = mapped_column(default=0)
    verdicts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()


class Refusal(Base):
    __tablename__ = "refusals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    stage: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64), index=True)
    clause: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
