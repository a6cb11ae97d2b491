"""Services and API keys; algorithm filings, versions, assessments, DSP-7 records, suspensions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from synthgate.db import Base, new_id, utcnow


class Service(Base):
    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    provider_code: Mapped[str] = mapped_column(String(27))
    filing_number: Mapped[str | None] = mapped_column(String(100))
    filing_link: Mapped[str | None] = mapped_column(String(500))
    profile: Mapped[str] = mapped_column(String(32), default="cn")
    upstream_url: Mapped[str | None] = mapped_column(String(500))
    upstream_key_enc: Mapped[str | None] = mapped_column(Text)
    upstream_model: Mapped[str | None] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per-service policy: blocked_terms, label_text, label_position."""
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    algorithm_id: Mapped[str | None] = mapped_column(ForeignKey("algorithms.id"), default=None)
    """The filed algorithm behind this service; its number and link are copied into ``filing_*``."""


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """First characters of the key, shown in lists so operators can tell keys apart."""
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()


# --- algorithm filings (DSP-19, ALG-24) ----------------------------------------------------------


class Algorithm(Base):
    """One filed (or to-be-filed) algorithm with the items the filing system asks for (ALG-24)."""

    __tablename__ = "algorithms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    provider_name: Mapped[str] = mapped_column(String(200))
    service_form: Mapped[str] = mapped_column(String(200))
    """How it is offered: app, website, mini program, API …"""
    application_domain: Mapped[str] = mapped_column(String(200))
    algorithm_type: Mapped[str] = mapped_column(String(64))
    self_assessment: Mapped[str] = mapped_column(Text, default="")
    """Summary of the algorithm self-assessment report; the report itself is an evidence file."""
    public_content: Mapped[str] = mapped_column(Text, default="")
    """What the filing makes public: principle, operating mechanism, scenarios, purpose."""
    filing_number: Mapped[str | None] = mapped_column(String(100), unique=True)
    filing_link: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32), default="draft")
    """draft, filed, cancelled."""
    launched_at: Mapped[dt.datetime | None] = mapped_column()
    filed_at: Mapped[dt.datetime | None] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlgorithmVersion(Base):
    """A model version served under a filed algorithm; ``models`` are the names requests carry."""

    __tablename__ = "algorithm_versions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    algorithm_id: Mapped[str] = mapped_column(ForeignKey("algorithms.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    models: Mapped[list[Any]] = mapped_column(default=list)
    biometric: Mapped[bool] = mapped_column(default=False)
    """Generates or edits biometric data (faces, voices) or sensitive objects / scenes (DSP-15)."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FilingObligation(Base):
    """Something that must be filed by a deadline: the launch filing, a change, a cancellation."""

    __tablename__ = "filing_obligations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    algorithm_id: Mapped[str] = mapped_column(ForeignKey("algorithms.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """launch, change or cancellation."""
    description: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime] = mapped_column(index=True)
    due_provisional: Mapped[bool] = mapped_column(default=False)
    """The holiday calendar does not cover the whole span yet; weekdays were assumed."""
    filed_at: Mapped[dt.datetime | None] = mapped_column()
    filed_by: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    overdue_noted_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceFunction(Base):
    """A function a service offers (an operation such as ``generate`` or ``face.swap``) (DSP-20)."""

    __tablename__ = "service_functions"
    __table_args__ = (UniqueConstraint("service_id", "operation"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    public_facing: Mapped[bool] = mapped_column(default=True)
    """Has public-opinion attributes or social-mobilisation capability: needs an assessment first."""
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Assessment(Base):
    """A security assessment or an ethics review of a model version or a function, with sign-off."""

    __tablename__ = "assessments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    """security or ethics."""
    title: Mapped[str] = mapped_column(String(200))
    algorithm_id: Mapped[str | None] = mapped_column(ForeignKey("algorithms.id"), index=True)
    algorithm_version_id: Mapped[str | None] = mapped_column(ForeignKey("algorithm_versions.id"), index=True)
    function_id: Mapped[str | None] = mapped_column(ForeignKey("service_functions.id"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    conclusion: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, passed or failed."""
    valid_until: Mapped[dt.datetime | None] = mapped_column()
    signed_off_by: Mapped[str | None] = mapped_column(String(200))
    signed_off_on: Mapped[dt.date | None] = mapped_column(Date)
    signed_off_at: Mapped[dt.datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ManagementRecord(Base):
    """A record of one of the management systems DSP-7 requires, with owner, date and evidence."""

    __tablename__ = "management_records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    record_type: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))
    """The person or department responsible for this system."""
    effective_on: Mapped[dt.date] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text, default="")
    algorithm_id: Mapped[str | None] = mapped_column(ForeignKey("algorithms.id"), index=True)
    """The filing this record goes with, when it is part of one."""
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LabelingMaterial(Base):
    """Labeling materials (LM-12): how this provider labels content, filed with the algorithm."""

    __tablename__ = "labeling_materials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    algorithm_id: Mapped[str] = mapped_column(ForeignKey("algorithms.id"), index=True)
    assessment_id: Mapped[str | None] = mapped_column(ForeignKey("assessments.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    configuration: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """A snapshot of the labeling settings in force when the material was made."""
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EvidenceFile(Base):
    """A file backing an assessment, a DSP-7 record, a filing or a labeling material."""

    __tablename__ = "evidence_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    """Sniffed from the content, never from the name: pdf, png, jpeg, docx, text …"""
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Suspension(Base):
    """An emergency suspension of a whole service or one of its features."""

    __tablename__ = "suspensions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    feature: Mapped[str | None] = mapped_column(String(64))
    """None for the whole service; else an operation (``face.swap``) or ``medium:image``."""
    reason: Mapped[str] = mapped_column(Text)
    clause: Mapped[str] = mapped_column(String(32), default="GAI-14")
    case_ref: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    until: Mapped[dt.datetime | None] = mapped_column()
    lifted_at: Mapped[dt.datetime | None] = mapped_column()
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))


class GovernanceChange(Base):
    """One row per change the pipeline's governance gate must see; workers poll the newest id."""

    __tablename__ = "governance_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    what: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
