"""Read-only queries behind console pages for which the owning domain has no read function yet.

Nothing here writes. Each function belongs in its domain's service (provenance, audit, identity)
once that grows one; the pages only need the signatures to stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from synthgate.audit.models import AuditCheckpoint, AuditEvent, AuditTree
from synthgate.db import utcnow
from synthgate.errors import NotFound
from synthgate.gateway.models import Refusal
from synthgate.governance.models import ApiKey, Service
from synthgate.identity.models import Account, Verification
from synthgate.operators.models import Operator
from synthgate.provenance.models import Generation
from synthgate.rules.models import RulesVersion


def _count(session: Session, stmt: Select[Any]) -> int:
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class Counts:
    services: int
    active_keys: int
    accounts: int
    accounts_by_status: dict[str, int]
    verified_accounts: int
    generations: int
    generations_24h: int
    refusals_24h: int
    rules_versions: int
    audit_events: int
    operators: int


def counts(session: Session) -> Counts:
    since = utcnow() - dt.timedelta(hours=24)
    by_status = {
        str(row[0]): int(row[1])
        for row in session.execute(select(Account.status, func.count()).group_by(Account.status))
    }
    return Counts(
        services=_count(session, select(func.count()).select_from(Service)),
        active_keys=_count(
            session, select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
        ),
        accounts=sum(by_status.values()),
        accounts_by_status=by_status,
        verified_accounts=_count(
            session, select(func.count()).select_from(Account).where(Account.verified_at.is_not(None))
        ),
        generations=_count(session, select(func.count()).select_from(Generation)),
        generations_24h=_count(
            session, select(func.count()).select_from(Generation).where(Generation.created_at >= since)
        ),
        refusals_24h=_count(
            session, select(func.count()).select_from(Refusal).where(Refusal.created_at >= since)
        ),
        rules_versions=_count(session, select(func.count()).select_from(RulesVersion)),
        audit_events=_count(session, select(func.count()).select_from(AuditEvent)),
        operators=_count(session, select(func.count()).select_from(Operator)),
    )


def services_by_id(session: Session) -> dict[str, Service]:
    return {s.id: s for s in session.scalars(select(Service))}


def key_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(ApiKey.service_id, func.count()).where(ApiKey.revoked_at.is_(None)).group_by(ApiKey.service_id)
    )
    return {str(row[0]): int(row[1]) for row in rows}


def account(session: Session, account_id: str) -> Account:
    found = session.get(Account, account_id)
    if found is None:
        raise NotFound(f"no account {account_id!r}")
    return found


def accounts_by_id(session: Session, ids: set[str]) -> dict[str, Account]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids)))}


def latest_accounts(session: Session, limit: int = 50) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.created_at.desc()).limit(limit)))


def verifications(session: Session, account: Account) -> list[Verification]:
    return list(
        session.scalars(
            select(Verification)
            .where(Verification.account_id == account.id)
            .order_by(Verification.created_at)
        )
    )


def generations(
    session: Session,
    *,
    service_id: str | None = None,
    account_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Generation]:
    stmt = select(Generation).order_by(Generation.created_at.desc(), Generation.id.desc())
    if service_id:
        stmt = stmt.where(Generation.service_id == service_id)
    if account_id:
        stmt = stmt.where(Generation.account_id == account_id)
    if since is not None:
        stmt = stmt.where(Generation.created_at >= since)
    if until is not None:
        stmt = stmt.where(Generation.created_at < until)
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def generation(session: Session, produce_id: str) -> Generation:
    found = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
    if found is None:
        raise NotFound(f"no generation with produce id {produce_id!r}")
    return found


def audit_events(
    session: Session,
    *,
    event_type: str | None = None,
    subject_id: str | None = None,
    actor: str | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if event_type:
        # A trailing dot selects a family: ``account.`` finds every account event.
        if event_type.endswith("."):
            stmt = stmt.where(AuditEvent.event_type.startswith(event_type, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.event_type == event_type)
    if subject_id:
        stmt = stmt.where(AuditEvent.subject_id == subject_id)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    return list(session.scalars(stmt.limit(limit)))


@dataclass(frozen=True)
class AuditState:
    size: int
    root: str | None
    pending: int
    checkpoint_size: int | None
    checkpoint_at: dt.datetime | None


def audit_state(session: Session) -> AuditState:
    tree = session.get(AuditTree, 1)
    pending = _count(
        session, select(func.count()).select_from(AuditEvent).where(AuditEvent.leaf_index.is_(None))
    )
    checkpoint = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))
    return AuditState(
        size=tree.size if tree else 0,
        root=tree.root if tree else None,
        pending=pending,
        checkpoint_size=checkpoint.size if checkpoint else None,
        checkpoint_at=checkpoint.created_at if checkpoint else None,
    )
