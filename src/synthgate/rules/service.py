"""Writes rules versions and acceptances (DSP-8, LM-8)."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.errors import Conflict, InvalidInput, NotFound, Refused
from synthgate.governance.models import Service
from synthgate.identity.models import Account
from synthgate.rules.models import RulesAcceptance, RulesVersion

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
MAX_BODY_CHARS = 500_000


def publish(
    session: Session, service: Service, *, version: str, title: str, body: str, actor: str
) -> RulesVersion:
    """Publish a new version. Every account must accept it before its next generation."""
    if not _VERSION.match(version):
        raise InvalidInput(
            "version must be 1-50 letters, digits, dots, dashes or underscores", field="version"
        )
    if not title.strip() or len(title) > 300:
        raise InvalidInput("title must be 1-300 characters", field="title")
    if not body.strip() or len(body) > MAX_BODY_CHARS:
        raise InvalidInput(f"body must be 1-{MAX_BODY_CHARS} characters", field="body")
    if session.scalar(
        select(RulesVersion).where(RulesVersion.service_id == service.id, RulesVersion.version == version)
    ):
        raise Conflict(f"version {version!r} was published already; versions are immutable", field="version")
    rules = RulesVersion(
        service_id=service.id,
        version=version,
        title=title.strip(),
        body=body,
        body_sha256=hashlib.sha256(body.encode()).hexdigest(),
        published_by=actor,
    )
    session.add(rules)
    session.flush()
    audit.record(
        session,
        "rules.published",
        actor=actor,
        service_id=service.id,
        subject_type="rules_version",
        subject_id=rules.id,
        data={"version": version, "sha256": rules.body_sha256},
    )
    return rules


def current(session: Session, service: Service) -> RulesVersion | None:
    return session.scalar(
        select(RulesVersion)
        .where(RulesVersion.service_id == service.id)
        .order_by(RulesVersion.published_at.desc(), RulesVersion.id.desc())
        .limit(1)
    )


def versions(session: Session, service: Service) -> list[RulesVersion]:
    return list(
        session.scalars(
            select(RulesVersion)
            .where(RulesVersion.service_id == service.id)
            .order_by(RulesVersion.published_at.desc())
        )
    )


def accept(session: Session, account: Account, version: str) -> RulesAcceptance:
    """Record acceptance of a version; only the current version can be accepted."""
    service = session.get(Service, account.service_id)
    assert service is not None
    latest = current(session, service)
    if latest is None:
        raise NotFound("this service has not published any rules")
    if version != latest.version:
        raise Conflict(
            f"version {version!r} is not the current rules version ({latest.version!r})",
            field="version",
            current=latest.version,
        )
    existing = session.scalar(
        select(RulesAcceptance).where(
            RulesAcceptance.account_id == account.id, RulesAcceptance.rules_version_id == latest.id
        )
    )
    if existing is not None:
        return existing
    acceptance = RulesAcceptance(account_id=account.id, rules_version_id=latest.id)
    session.add(acceptance)
    session.flush()
    audit.record(
        session,
        "rules.accepted",
        actor=f"account:{account.id}",
        service_id=account.service_id,
        subject_type="account",
        subject_id=account.id,
        data={"version": version, "rules_version": latest.id, "sha256": latest.body_sha256},
    )
    return acceptance


def ensure_current_accepted(session: Session, service: Service, account: Account) -> str:
    """The current version label, if the account accepted it; otherwise a ``Refused`` (DSP-8).

    One small query on the hot path: the newest version's id and label (never its body) and
    whether this account accepted it.
    """
    accepted = (
        select(RulesAcceptance.id)
        .where(RulesAcceptance.account_id == account.id, RulesAcceptance.rules_version_id == RulesVersion.id)
        .exists()
    )
    latest = session.execute(
        select(RulesVersion.version, accepted)
        .where(RulesVersion.service_id == service.id)
        .order_by(RulesVersion.published_at.desc(), RulesVersion.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        raise Refused(
            "rules.unpublished",
            "DSP-8",
            "this service has not published its rules and service agreement yet",
        )
    version, is_accepted = latest
    if not is_accepted:
        raise Refused(
            "rules.not_accepted",
            "DSP-8",
            f"accept the current rules (version {version}) before generating",
            rules_version=version,
        )
    return str(version)
