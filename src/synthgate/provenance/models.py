"""Generation records: one per delivered output, found by its produce id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class Generation(Base):
    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    produce_id: Mapped[str] = mapped_column(String(64), unique=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    """``two_phase`` or ``proxy``."""
    medium: Mapped[str] = mapped_column(String(16), default="text")
    model: Mapped[str | None] = mapped_column(String(200))
    streamed: Mapped[bool] = mapped_column(default=False)
    input_sha256: Mapped[str] = mapped_column(String(64))
    output_sha256: Mapped[str] = mapped_column(String(64))
    input_chars: Mapped[int] = mapped_column(default=0)
    output_chars: Mapped[int] = mapped_column(default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verdicts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
