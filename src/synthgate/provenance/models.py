"""Generation records: one per delivered output, found by its produce id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow
from synthgate.provenance import partitions as _partitions  # noqa: F401 - registers the DDL hooks

PARTITIONED_BY_TIME = {"postgresql_partition_by": "RANGE (created_at)"}
"""Monthly partitions on PostgreSQL (retention drops a month); a plain table on SQLite."""


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = PARTITIONED_BY_TIME

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    produce_id: Mapped[str] = mapped_column(String(64), index=True)
    """Unique by construction (80 random bits per millisecond); a partitioned table cannot carry a
    unique constraint without the partition key."""
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    """``two_phase`` or ``proxy``."""
    medium: Mapped[str] = mapped_column(String(16), default="text")
    operation: Mapped[str] = mapped_column(String(64), default="generate")
    """``generate`` or an edit such as ``face.swap`` (DSP-14 gates the biometric ones)."""
    input_media: Mapped[list[Any]] = mapped_column(default=list)
    """Digests of the input files (sha256, container, role): never the files themselves (GAI-11)."""
    model: Mapped[str | None] = mapped_column(String(200))
    streamed: Mapped[bool] = mapped_column(default=False)
    input_sha256: Mapped[str] = mapped_column(String(64))
    output_sha256: Mapped[str] = mapped_column(String(64), index=True)
    input_chars: Mapped[int] = mapped_column(default=0)
    output_chars: Mapped[int] = mapped_column(default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verdicts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    model_version: Mapped[str | None] = mapped_column(String(100), default=None)
    algorithm_id: Mapped[str | None] = mapped_column(String(200), default=None)
    """The filed algorithm (DSP-19 filing) that produced this output, when known."""
    digests: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Further digests of the delivered content, by kind: ``{"sha256": [...], "pdq": [...]}`` for
    files and video frames; tracing looks them up through ``GenerationDigest``."""
    delivered_unlabeled: Mapped[bool] = mapped_column(default=False)
    """LM-9: delivered without the explicit label at the user's request."""
    unlabeled_recipient: Mapped[str | None] = mapped_column(String(100), default=None)
    """LM-9: who received the unlabeled content (a pseudonymous account id)."""
    taken_down_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    """DSP-10 disposal: the content and its files were taken down (by the case ``taken_down_case``)."""
    taken_down_case: Mapped[str | None] = mapped_column(String(32), default=None)


class GenerationDigest(Base):
    """One digest of delivered content, indexed so a file found in the wild finds its generation."""

    __tablename__ = "generation_digests"
    __table_args__ = PARTITIONED_BY_TIME

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    generation_id: Mapped[str] = mapped_column(String(32), index=True)
    """No foreign key: a partitioned ``generations`` has no unique ``id`` to reference. Digests are
    written with their generation and share its ``created_at``, so both drop in the same month."""
    kind: Mapped[str] = mapped_column(String(16))
    """``sha256`` (exact bytes) or ``pdq`` (perceptual, images / video frames)."""
    value: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    """Equal to the generation's, so a digest lives in the same monthly partition."""
