"""Writes the governance tables: services and API keys, algorithm filings (DSP-19, ALG-24), model
versions, functions and their assessments (DSP-15, DSP-20), DSP-7 records, labeling materials
(LM-12), evidence files and emergency suspensions."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.config import Settings
from synthgate.db import Base, utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound, Unauthorized
from synthgate.governance import evidence
from synthgate.governance.evidence import EvidenceStore
from synthgate.governance.models import (
    Algorithm,
    AlgorithmVersion,
    ApiKey,
    Assessment,
    EvidenceFile,
    FilingObligation,
    GovernanceChange,
    LabelingMaterial,
    ManagementRecord,
    Service,
    ServiceFunction,
    Suspension,
)
from synthgate.governance.workdays import DEFAULT_CALENDAR, WorkCalendar, china_date
from synthgate.identity.validators import InvalidIdentifier, parse_provider_code
from synthgate.keys import KeyStore, hash_api_secret

SCOPES = ("generate", "accounts")
"""``generate``: check/complete and the proxy; ``accounts``: register and verify end users, rules."""

PROFILES = ("cn", "eu", "cn+eu")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
KEY_PREFIX = "sg_"
SERVICE_SETTINGS = {
    "blocked_terms",
    "label_text",
    "label_position",
    "biometric_operations",
    "consent_media_policy",
    "unlabeled_delivery",
}


def _validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    # The moderation domain owns its own keys (detectors, hash banks, review callback) and checks them.
    from synthgate.moderation import registry as moderation_settings

    unknown = set(settings) - SERVICE_SETTINGS - moderation_settings.SERVICE_SETTINGS
    if unknown:
        raise InvalidInput(f"unknown service settings: {', '.join(sorted(unknown))}")
    moderation_settings.validate_service_settings(settings)
    if not isinstance(settings.get("unlabeled_delivery", False), bool):
        raise InvalidInput(
            "unlabeled_delivery is true or false (LM-9: the agreement sets the users' labeling duty)"
        )
    if settings.get("consent_media_policy", "detect") not in ("detect", "operations"):
        raise InvalidInput("consent_media_policy must be detect or operations")
    terms = settings.get("blocked_terms", [])
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise InvalidInput("blocked_terms must be a list of non-empty strings")
    position = settings.get("label_position", "end")
    if position not in ("start", "end", "both"):
        raise InvalidInput("label_position must be start, end or both")
    biometric = settings.get("biometric_operations", [])
    if not isinstance(biometric, list) or not all(isinstance(o, str) and o.strip() for o in biometric):
        raise InvalidInput("biometric_operations must be a list of operation names")
    label = settings.get("label_text")
    if label is not None:
        from synthgate.labeling.text import check_label_wording

        check_label_wording(label)
    return settings


def create_service(
    session: Session,
    keys: KeyStore,
    *,
    slug: str,
    name: str,
    provider_code: str,
    actor: str,
    filing_number: str | None = None,
    filing_link: str | None = None,
    profile: str = "cn",
    upstream_url: str | None = None,
    upstream_key: str | None = None,
    upstream_model: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Service:
    if not _SLUG.match(slug):
        raise InvalidInput("slug must be 2-63 lower-case letters, digits or dashes", field="slug")
    if not name.strip():
        raise InvalidInput("name must not be empty", field="name")
    try:
        code = parse_provider_code(provider_code).code
    except InvalidIdentifier as exc:
        raise InvalidInput(f"provider code: {exc}", field="provider_code") from exc
    if profile not in PROFILES:
        raise InvalidInput(f"profile must be one of {', '.join(PROFILES)}", field="profile")
    if filing_link and not filing_link.startswith(("https://", "http://")):
        raise InvalidInput("filing link must be an http(s) URL", field="filing_link")
    if upstream_url and not upstream_url.startswith(("https://", "http://")):
        raise InvalidInput("upstream URL must be an http(s) URL", field="upstream_url")
    if session.scalar(select(Service).where(Service.slug == slug)):
        raise Conflict(f"a service named {slug!r} exists already", field="slug")
    service = Service(
        slug=slug,
        name=name.strip(),
        provider_code=code,
        filing_number=filing_number,
        filing_link=filing_link,
        profile=profile,
        upstream_url=upstream_url.rstrip("/") if upstream_url else None,
        upstream_key_enc=keys.encrypt(upstream_key, "upstream-key") if upstream_key else None,
        upstream_model=upstream_model,
        settings=_validate_settings(dict(settings or {})),
    )
    session.add(service)
    session.flush()
    audit.record(
        session,
        "service.created",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={"slug": slug, "provider_code": code, "filing_number": filing_number, "profile": profile},
    )
    return service


def update_service_settings(
    session: Session, service: Service, settings: dict[str, Any], *, actor: str
) -> None:
    merged = _validate_settings({**service.settings, **settings})
    service.settings = merged
    audit.record(
        session,
        "service.settings_changed",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={"changed": sorted(settings)},
    )


def list_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.created_at)))


def get_service(session: Session, slug_or_id: str) -> Service:
    service = session.scalar(select(Service).where((Service.slug == slug_or_id) | (Service.id == slug_or_id)))
    if service is None:
        raise NotFound(f"no service {slug_or_id!r}")
    return service


def reveal_webhook_secret(session: Session, keys: KeyStore, slug_or_id: str, *, actor: str) -> str:
    """The key the service's webhooks (review decisions) are signed with; every reveal is audited."""
    service = get_service(session, slug_or_id)
    audit.record(
        session,
        "service.webhook_secret_revealed",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={},
    )
    return keys.webhook_secret(service.id)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str
    """The full key, shown once and never stored."""


def create_api_key(
    session: Session, service: Service, *, actor: str, name: str = "", scopes: list[str] | None = None
) -> IssuedKey:
    chosen = list(scopes) if scopes else list(SCOPES)
    unknown = set(chosen) - set(SCOPES)
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(sorted(unknown))}; known: {', '.join(SCOPES)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        service_id=service.id,
        name=name,
        key_hash=hash_api_secret(secret),
        prefix=secret[:10],
        scopes=chosen,
        created_by=actor,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        "api_key.created",
        actor=actor,
        service_id=service.id,
        subject_type="api_key",
        subject_id=key.id,
        data={"prefix": key.prefix, "scopes": chosen, "name": name},
    )
    return IssuedKey(key=key, secret=secret)


def revoke_api_key(session: Session, key_id_or_prefix: str, *, actor: str) -> ApiKey:
    key = session.scalar(
        select(ApiKey).where((ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix))
    )
    if key is None:
        raise NotFound(f"no API key {key_id_or_prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            "api_key.revoked",
            actor=actor,
            service_id=key.service_id,
            subject_type="api_key",
            subject_id=key.id,
            data={"prefix": key.prefix},
        )
    return key


def list_api_keys(session: Session, service: Service | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if service is not None:
        query = query.where(ApiKey.service_id == service.id)
    return list(session.scalars(query))


def authenticate(session: Session, secret: str) -> tuple[ApiKey, Service]:
    """The key and its service for a presented secret; 401 for unknown, revoked or inactive."""
    if not secret.startswith(KEY_PREFIX):
        raise Unauthorized("unknown API key")
    row = session.execute(
        select(ApiKey, Service)
        .join(Service, Service.id == ApiKey.service_id)
        .where(ApiKey.key_hash == hash_api_secret(secret))
    ).first()
    if row is None:
        raise Unauthorized("unknown API key")
    key, service = row
    if key.revoked_at is not None:
        raise Unauthorized("this API key was revoked")
    if not service.active:
        raise Unauthorized("the service of this API key is not active")
    return key, service


# --- the governance gate's change feed --------------------------------------------------------------
#
# Every change the pipeline's governance gate depends on (suspensions, versions, functions,
# assessments) appends a row to ``governance_changes`` in the same transaction; each worker polls
# the newest id at most once a second (``gate.GateCache``), and a change committed in this process
# is seen at once through the in-process counter.

_changes_in_process = 0


def changes_in_process() -> int:
    return _changes_in_process


def _count_commit(_session: Session) -> None:
    global _changes_in_process
    _changes_in_process += 1


def _changed(session: Session, what: str) -> None:
    session.add(GovernanceChange(what=what, created_at=utcnow()))
    event.listen(session, "after_commit", _count_commit, once=True)


# --- algorithm filings (DSP-19, ALG-24) -------------------------------------------------------------

ALGORITHM_TYPES = {
    "generation_synthesis": "生成合成类 / generation and synthesis",
    "personalised_push": "个性化推送类 / personalised push",
    "ranking_selection": "排序精选类 / ranking and selection",
    "search_filtering": "检索过滤类 / search and filtering",
    "scheduling_decision": "调度决策类 / scheduling and decision",
}
ALG24_ITEMS = (
    "provider_name",
    "service_form",
    "application_domain",
    "algorithm_type",
    "self_assessment",
    "public_content",
)
"""The filing items of ALG-24, each required before an algorithm may be filed."""
FILING_DEADLINES = {"launch": 10, "change": 10, "cancellation": 20}
"""Working days to file (DSP-19): after launch, after a change, after the service stops."""
REMIND_WORKDAYS = 3
"""An open filing is reminded about once this few working days are left."""


def _text(value: str | None, field: str, *, limit: int = 200, required: bool = True) -> str:
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInput(f"{field.replace('_', ' ')} must not be empty", field=field)
    if len(cleaned) > limit:
        raise InvalidInput(f"{field.replace('_', ' ')} is longer than {limit} characters", field=field)
    return cleaned


def _link(value: str | None, field: str) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        return None
    if (
        not cleaned.startswith(("https://", "http://"))
        or len(cleaned) > 500
        or any(c.isspace() for c in cleaned)
    ):
        raise InvalidInput(f"{field.replace('_', ' ')} must be an http(s) URL", field=field)
    return cleaned


def _algorithm_items(items: dict[str, Any]) -> dict[str, str]:
    unknown = set(items) - set(ALG24_ITEMS) - {"name"}
    if unknown:
        raise InvalidInput(f"unknown filing items: {', '.join(sorted(unknown))}")
    cleaned: dict[str, str] = {}
    for key, value in items.items():
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{key} must be text", field=key)
        long_text = key in ("self_assessment", "public_content")
        cleaned[key] = _text(value, key, limit=20_000 if long_text else 200, required=key == "name")
    if cleaned.get("algorithm_type") and cleaned["algorithm_type"] not in ALGORITHM_TYPES:
        raise InvalidInput(
            f"algorithm type must be one of {', '.join(ALGORITHM_TYPES)}", field="algorithm_type"
        )
    return cleaned


def _due(kind: str, occurred_at: dt.datetime, calendar: WorkCalendar) -> tuple[dt.datetime, bool]:
    days = FILING_DEADLINES[kind]
    due = calendar.due_after(occurred_at, days)
    start = china_date(occurred_at)
    covered = all(
        calendar.covered(start + dt.timedelta(days=n)) for n in range(0, (china_date(due) - start).days + 1)
    )
    return due, not covered


def _obligation(
    session: Session,
    algorithm: Algorithm,
    kind: str,
    *,
    description: str,
    occurred_at: dt.datetime,
    actor: str,
    calendar: WorkCalendar,
) -> FilingObligation:
    due, provisional = _due(kind, occurred_at, calendar)
    obligation = FilingObligation(
        algorithm_id=algorithm.id,
        kind=kind,
        description=description,
        occurred_at=occurred_at,
        due_at=due,
        due_provisional=provisional,
        created_by=actor,
    )
    session.add(obligation)
    session.flush()
    audit.record(
        session,
        "filing.obligation_opened",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={
            "obligation": obligation.id,
            "kind": kind,
            "occurred_at": occurred_at.isoformat(),
            "due_at": due.isoformat(),
            "working_days": FILING_DEADLINES[kind],
            "provisional": provisional,
        },
    )
    return obligation


def create_algorithm(
    session: Session,
    *,
    actor: str,
    name: str,
    provider_name: str = "",
    service_form: str = "",
    application_domain: str = "",
    algorithm_type: str = "",
    self_assessment: str = "",
    public_content: str = "",
    launched_at: dt.datetime | None = None,
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> Algorithm:
    """A new algorithm in draft; with ``launched_at`` the 10-working-day launch filing is due."""
    items = _algorithm_items(
        {
            "name": name,
            "provider_name": provider_name,
            "service_form": service_form,
            "application_domain": application_domain,
            "algorithm_type": algorithm_type,
            "self_assessment": self_assessment,
            "public_content": public_content,
        }
    )
    algorithm = Algorithm(**items, status="draft", launched_at=launched_at, created_by=actor)
    session.add(algorithm)
    session.flush()
    audit.record(
        session,
        "algorithm.created",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={"name": algorithm.name, "algorithm_type": algorithm.algorithm_type},
    )
    if launched_at is not None:
        _obligation(
            session,
            algorithm,
            "launch",
            description="file the algorithm after launch",
            occurred_at=launched_at,
            actor=actor,
            calendar=calendar,
        )
    return algorithm


def record_launch(
    session: Session,
    algorithm: Algorithm,
    *,
    launched_at: dt.datetime,
    actor: str,
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> FilingObligation:
    """The service went live before its filing: the filing is due within 10 working days (DSP-19)."""
    if algorithm.status != "draft":
        raise Conflict(f"this algorithm is {algorithm.status}; a launch is recorded before the filing")
    if algorithm.launched_at is not None:
        raise Conflict("the launch of this algorithm was recorded already")
    if launched_at > utcnow():
        raise InvalidInput("the launch time must not be in the future", field="launched_at")
    algorithm.launched_at = launched_at
    return _obligation(
        session,
        algorithm,
        "launch",
        description="file the algorithm after launch",
        occurred_at=launched_at,
        actor=actor,
        calendar=calendar,
    )


def get_algorithm(session: Session, algorithm_id: str) -> Algorithm:
    algorithm = session.get(Algorithm, algorithm_id) if algorithm_id else None
    if algorithm is None:
        algorithm = session.scalar(select(Algorithm).where(Algorithm.filing_number == algorithm_id))
    if algorithm is None:
        raise NotFound(f"no algorithm {algorithm_id!r}")
    return algorithm


def list_algorithms(session: Session) -> list[Algorithm]:
    return list(session.scalars(select(Algorithm).order_by(Algorithm.created_at)))


def update_algorithm(
    session: Session,
    algorithm: Algorithm,
    items: dict[str, Any],
    *,
    actor: str,
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> FilingObligation | None:
    """Edit the filing items; a change to a filed algorithm opens a change filing (10 working days)."""
    if algorithm.status == "cancelled":
        raise Conflict("this algorithm's filing was cancelled; file a new algorithm instead")
    cleaned = _algorithm_items(items)
    changed = sorted(k for k, v in cleaned.items() if getattr(algorithm, k) != v)
    if not changed:
        return None
    for key in changed:
        setattr(algorithm, key, cleaned[key])
    audit.record(
        session,
        "algorithm.updated",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={"changed": changed, "status": algorithm.status},
    )
    if algorithm.status == "filed":
        return _obligation(
            session,
            algorithm,
            "change",
            description="filing items changed: " + ", ".join(changed),
            occurred_at=utcnow(),
            actor=actor,
            calendar=calendar,
        )
    return None


def _sync_services(session: Session, algorithm: Algorithm) -> list[str]:
    """Copy the filing number and link into every linked service (read on the hot path as is)."""
    services = list(session.scalars(select(Service).where(Service.algorithm_id == algorithm.id)))
    filed = algorithm.status == "filed"
    for service in services:
        service.filing_number = algorithm.filing_number if filed else None
        service.filing_link = algorithm.filing_link if filed else None
    return [s.slug for s in services]


def record_filing(
    session: Session,
    algorithm: Algorithm,
    *,
    filing_number: str,
    filing_link: str,
    actor: str,
    filed_at: dt.datetime | None = None,
) -> Algorithm:
    """The authority accepted the filing: its number and public-notice link (DSP-19)."""
    if algorithm.status != "draft":
        raise Conflict(f"this algorithm is {algorithm.status}; only a draft is filed")
    number = _text(filing_number, "filing_number", limit=100)
    link = _link(filing_link, "filing_link")
    if link is None:
        raise InvalidInput("the public-notice link of the filing is required", field="filing_link")
    missing = [item for item in ALG24_ITEMS if not getattr(algorithm, item)]
    if missing:
        raise InvalidInput(
            "ALG-24: fill in every filing item before filing; missing: " + ", ".join(missing),
            field=missing[0],
        )
    if not session.scalar(
        select(LabelingMaterial.id).where(LabelingMaterial.algorithm_id == algorithm.id).limit(1)
    ):
        raise Conflict("LM-12: attach the labeling materials to the filing before recording it")
    if session.scalar(
        select(Algorithm.id).where(Algorithm.filing_number == number, Algorithm.id != algorithm.id)
    ):
        raise Conflict(f"filing number {number} belongs to another algorithm", field="filing_number")
    now = filed_at or utcnow()
    algorithm.filing_number = number
    algorithm.filing_link = link
    algorithm.status = "filed"
    algorithm.filed_at = now
    for obligation in session.scalars(
        select(FilingObligation).where(
            FilingObligation.algorithm_id == algorithm.id,
            FilingObligation.kind == "launch",
            FilingObligation.filed_at.is_(None),
        )
    ):
        obligation.filed_at = now
        obligation.filed_by = actor
        obligation.reference = number
    services = _sync_services(session, algorithm)
    audit.record(
        session,
        "algorithm.filed",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={"filing_number": number, "filing_link": link, "services": services},
    )
    return algorithm


def link_service(session: Session, service: Service, algorithm: Algorithm | None, *, actor: str) -> Service:
    """Show this algorithm's filing on the service's pages and API answers (or unlink with None)."""
    if algorithm is not None and algorithm.status == "cancelled":
        raise Conflict("a cancelled filing cannot be linked to a service")
    service.algorithm_id = algorithm.id if algorithm else None
    # Unlinked, the service is under no filing: a stale number on its pages would mislead.
    filed = algorithm is not None and algorithm.status == "filed"
    service.filing_number = algorithm.filing_number if algorithm is not None and filed else None
    service.filing_link = algorithm.filing_link if algorithm is not None and filed else None
    _changed(session, "service.algorithm")
    audit.record(
        session,
        "service.algorithm_linked",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={"algorithm": algorithm.id if algorithm else None, "filing_number": service.filing_number},
    )
    return service


def record_change(
    session: Session,
    algorithm: Algorithm,
    *,
    description: str,
    actor: str,
    occurred_at: dt.datetime | None = None,
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> FilingObligation:
    """A change to a filed algorithm (new purpose, mechanism, model …): file it within 10 working days."""
    if algorithm.status != "filed":
        raise Conflict("changes are filed for a filed algorithm; edit the draft instead")
    return _obligation(
        session,
        algorithm,
        "change",
        description=_text(description, "description", limit=2000),
        occurred_at=occurred_at or utcnow(),
        actor=actor,
        calendar=calendar,
    )


def stop_algorithm(
    session: Session,
    algorithm: Algorithm,
    *,
    reason: str,
    actor: str,
    occurred_at: dt.datetime | None = None,
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> FilingObligation:
    """The service behind a filed algorithm stops: cancel the filing within 20 working days."""
    if algorithm.status != "filed":
        raise Conflict("only a filed algorithm is cancelled")
    open_cancellation = session.scalar(
        select(FilingObligation.id).where(
            FilingObligation.algorithm_id == algorithm.id,
            FilingObligation.kind == "cancellation",
            FilingObligation.filed_at.is_(None),
        )
    )
    if open_cancellation:
        raise Conflict("a cancellation of this filing is already under way")
    return _obligation(
        session,
        algorithm,
        "cancellation",
        description=_text(reason, "reason", limit=2000),
        occurred_at=occurred_at or utcnow(),
        actor=actor,
        calendar=calendar,
    )


def list_obligations(
    session: Session, *, algorithm: Algorithm | None = None, open_only: bool = False
) -> list[FilingObligation]:
    query = select(FilingObligation).order_by(FilingObligation.due_at)
    if algorithm is not None:
        query = query.where(FilingObligation.algorithm_id == algorithm.id)
    if open_only:
        query = query.where(FilingObligation.filed_at.is_(None))
    return list(session.scalars(query))


def complete_obligation(
    session: Session,
    obligation_id: str,
    *,
    reference: str,
    actor: str,
    filed_at: dt.datetime | None = None,
) -> FilingObligation:
    """The change or cancellation was filed; a filed cancellation ends the algorithm's filing."""
    obligation = session.get(FilingObligation, obligation_id)
    if obligation is None:
        raise NotFound(f"no filing obligation {obligation_id!r}")
    if obligation.filed_at is not None:
        raise Conflict("this obligation was filed already")
    if obligation.kind == "launch":
        raise Conflict("the launch filing is completed by recording the filing number")
    now = filed_at or utcnow()
    obligation.filed_at = now
    obligation.filed_by = actor
    obligation.reference = _text(reference, "reference", limit=200)
    algorithm = session.get(Algorithm, obligation.algorithm_id)
    assert algorithm is not None
    data: dict[str, Any] = {
        "obligation": obligation.id,
        "kind": obligation.kind,
        "reference": obligation.reference,
        "on_time": now <= obligation.due_at,
    }
    if obligation.kind == "cancellation":
        algorithm.status = "cancelled"
        algorithm.cancelled_at = now
        data["services"] = _sync_services(session, algorithm)
        for service in session.scalars(select(Service).where(Service.algorithm_id == algorithm.id)):
            service.algorithm_id = None
        _changed(session, "algorithm.cancelled")
    audit.record(
        session,
        "filing.obligation_filed",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data=data,
    )
    return obligation


@dataclass(frozen=True)
class Reminder:
    obligation: FilingObligation
    algorithm_name: str
    workdays_left: int

    @property
    def overdue(self) -> bool:
        return self.workdays_left < 0


def due_filings(
    session: Session, *, now: dt.datetime | None = None, calendar: WorkCalendar = DEFAULT_CALENDAR
) -> list[Reminder]:
    """Open filings with the working days left (negative: overdue), soonest first."""
    now = now or utcnow()
    rows = session.execute(
        select(FilingObligation, Algorithm.name)
        .join(Algorithm, Algorithm.id == FilingObligation.algorithm_id)
        .where(FilingObligation.filed_at.is_(None))
        .order_by(FilingObligation.due_at)
    ).all()
    return [Reminder(o, name, calendar.workdays_left(now, o.due_at)) for o, name in rows]


def send_filing_reminders(
    session: Session, *, now: dt.datetime | None = None, calendar: WorkCalendar = DEFAULT_CALENDAR
) -> list[Reminder]:
    """Audit a reminder once an open filing is close to its deadline, and once more when overdue."""
    now = now or utcnow()
    sent: list[Reminder] = []
    for reminder in due_filings(session, now=now, calendar=calendar):
        obligation = reminder.obligation
        if reminder.overdue:
            if obligation.overdue_noted_at is not None:
                continue
            obligation.overdue_noted_at = now
            event_type = "filing.overdue"
        elif reminder.workdays_left <= REMIND_WORKDAYS and obligation.reminded_at is None:
            obligation.reminded_at = now
            event_type = "filing.reminder"
        else:
            continue
        audit.record(
            session,
            event_type,
            actor="system",
            subject_type="algorithm",
            subject_id=obligation.algorithm_id,
            data={
                "obligation": obligation.id,
                "kind": obligation.kind,
                "due_at": obligation.due_at.isoformat(),
                "workdays_left": reminder.workdays_left,
            },
        )
        sent.append(reminder)
    return sent


# --- versions, functions, assessments (DSP-15, DSP-20) --------------------------------------------


def add_version(
    session: Session,
    algorithm: Algorithm,
    *,
    version: str,
    models: list[str],
    biometric: bool,
    actor: str,
    description: str = "",
    calendar: WorkCalendar = DEFAULT_CALENDAR,
) -> AlgorithmVersion:
    """A model version served under the algorithm; for a filed one it is a change to file."""
    if algorithm.status == "cancelled":
        raise Conflict("this algorithm's filing was cancelled")
    label = _text(version, "version", limit=64)
    names = [m.strip() for m in models if m.strip()]
    if not names:
        raise InvalidInput("name at least one model that requests use for this version", field="models")
    if session.scalar(
        select(AlgorithmVersion.id).where(
            AlgorithmVersion.algorithm_id == algorithm.id, AlgorithmVersion.version == label
        )
    ):
        raise Conflict(f"version {label} exists already", field="version")
    row = AlgorithmVersion(
        algorithm_id=algorithm.id,
        version=label,
        models=names,
        biometric=biometric,
        description=description.strip(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    _changed(session, "algorithm.version")
    audit.record(
        session,
        "algorithm.version_added",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={"version": label, "models": names, "biometric": biometric},
    )
    if algorithm.status == "filed":
        _obligation(
            session,
            algorithm,
            "change",
            description=f"new model version {label}",
            occurred_at=utcnow(),
            actor=actor,
            calendar=calendar,
        )
    return row


def list_versions(session: Session, algorithm: Algorithm) -> list[AlgorithmVersion]:
    return list(
        session.scalars(
            select(AlgorithmVersion)
            .where(AlgorithmVersion.algorithm_id == algorithm.id)
            .order_by(AlgorithmVersion.created_at)
        )
    )


OPERATION_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"
"""One grammar for operation names everywhere: requests, declared functions, suspended features."""
OPERATION_MAX_LENGTH = 64
_OPERATION = re.compile(rf"^{OPERATION_PATTERN}$")


def declare_function(
    session: Session, service: Service, *, operation: str, title: str, public_facing: bool, actor: str
) -> ServiceFunction:
    """A function the service offers; public-facing ones need a passed assessment to run (DSP-20)."""
    op = operation.strip()
    if not _OPERATION.match(op) or len(op) > OPERATION_MAX_LENGTH:
        raise InvalidInput("operation must look like generate or face.swap", field="operation")
    if session.scalar(
        select(ServiceFunction.id).where(
            ServiceFunction.service_id == service.id, ServiceFunction.operation == op
        )
    ):
        raise Conflict(f"{service.slug} declares {op} already", field="operation")
    function = ServiceFunction(
        service_id=service.id,
        operation=op,
        title=_text(title, "title"),
        public_facing=public_facing,
        created_by=actor,
    )
    session.add(function)
    session.flush()
    _changed(session, "service.function")
    audit.record(
        session,
        "service.function_declared",
        actor=actor,
        service_id=service.id,
        subject_type="service_function",
        subject_id=function.id,
        data={"operation": op, "public_facing": public_facing},
    )
    return function


def list_functions(session: Session, service: Service | None = None) -> list[ServiceFunction]:
    query = select(ServiceFunction).order_by(ServiceFunction.created_at)
    if service is not None:
        query = query.where(ServiceFunction.service_id == service.id)
    return list(session.scalars(query))


ASSESSMENT_KINDS = ("security", "ethics")


def create_assessment(
    session: Session,
    *,
    kind: str,
    title: str,
    actor: str,
    algorithm_version_id: str | None = None,
    function_id: str | None = None,
    scope: str = "",
) -> Assessment:
    """A security assessment or ethics review of one model version or one function, pending sign-off."""
    if kind not in ASSESSMENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(ASSESSMENT_KINDS)}", field="kind")
    if bool(algorithm_version_id) == bool(function_id):
        raise InvalidInput("an assessment covers exactly one model version or one function", field="target")
    algorithm_id: str | None = None
    if algorithm_version_id:
        version = session.get(AlgorithmVersion, algorithm_version_id)
        if version is None:
            raise NotFound(f"no model version {algorithm_version_id!r}")
        algorithm_id = version.algorithm_id
    elif function_id and session.get(ServiceFunction, function_id) is None:
        raise NotFound(f"no service function {function_id!r}")
    assessment = Assessment(
        kind=kind,
        title=_text(title, "title"),
        algorithm_id=algorithm_id,
        algorithm_version_id=algorithm_version_id or None,
        function_id=function_id or None,
        scope=_text(scope, "scope", limit=20_000, required=False),
        created_by=actor,
    )
    session.add(assessment)
    session.flush()
    audit.record(
        session,
        "assessment.created",
        actor=actor,
        subject_type="assessment",
        subject_id=assessment.id,
        data={"kind": kind, "version": algorithm_version_id, "function": function_id},
    )
    return assessment


def get_assessment(session: Session, assessment_id: str) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(f"no assessment {assessment_id!r}")
    return assessment


def list_assessments(session: Session) -> list[Assessment]:
    return list(session.scalars(select(Assessment).order_by(Assessment.created_at.desc())))


def sign_off(
    session: Session,
    assessment: Assessment,
    *,
    result: str,
    conclusion: str,
    signed_on: dt.date,
    actor: str,
    valid_until: dt.datetime | None = None,
) -> Assessment:
    """Sign the assessment off as passed or failed (operator, date); final once signed."""
    if assessment.result != "pending":
        raise Conflict(f"this assessment was signed off already ({assessment.result})")
    if result not in ("passed", "failed"):
        raise InvalidInput("result must be passed or failed", field="result")
    text = _text(conclusion, "conclusion", limit=20_000)
    if signed_on > china_date(utcnow()) or signed_on < dt.date(2000, 1, 1):
        raise InvalidInput("the sign-off date must be a real date, not in the future", field="signed_on")
    if valid_until is not None and valid_until <= utcnow():
        raise InvalidInput("valid until must be in the future", field="valid_until")
    if not evidence_for(session, "assessment", assessment.id):
        raise Conflict("attach the assessment's evidence (report, test results) before signing it off")
    if (
        result == "passed"
        and assessment.kind == "security"
        and assessment.algorithm_id
        and not session.scalar(
            select(LabelingMaterial.id)
            .where(LabelingMaterial.algorithm_id == assessment.algorithm_id)
            .limit(1)
        )
    ):
        raise Conflict(
            "LM-12: attach the labeling materials to the algorithm before passing its security assessment"
        )
    assessment.result = result
    assessment.conclusion = text
    assessment.signed_off_by = actor
    assessment.signed_off_on = signed_on
    assessment.signed_off_at = utcnow()
    assessment.valid_until = valid_until
    _changed(session, "assessment.signed_off")
    audit.record(
        session,
        "assessment.signed_off",
        actor=actor,
        subject_type="assessment",
        subject_id=assessment.id,
        data={
            "kind": assessment.kind,
            "result": result,
            "signed_on": signed_on.isoformat(),
            "version": assessment.algorithm_version_id,
            "function": assessment.function_id,
            "valid_until": valid_until.isoformat() if valid_until else None,
        },
    )
    return assessment


# --- evidence, DSP-7 records, labeling materials (LM-12) ------------------------------------------

EVIDENCE_OWNERS = ("assessment", "record", "algorithm", "material")


def _owner_model(owner_type: str) -> type[Base]:
    models: dict[str, type[Base]] = {
        "assessment": Assessment,
        "record": ManagementRecord,
        "algorithm": Algorithm,
        "material": LabelingMaterial,
    }
    if owner_type not in models:
        raise InvalidInput(f"evidence belongs to one of {', '.join(EVIDENCE_OWNERS)}", field="owner_type")
    return models[owner_type]


def evidence_store(settings: Settings) -> EvidenceStore:
    return EvidenceStore(settings.blob_dir / "governance")


def add_evidence(
    session: Session,
    settings: Settings,
    *,
    owner_type: str,
    owner_id: str,
    filename: str,
    data: bytes,
    actor: str,
) -> EvidenceFile:
    """Store a file (sniffed, size-limited) as evidence of an assessment, record, filing or material."""
    model = _owner_model(owner_type)
    if session.get(model, owner_id) is None:
        raise NotFound(f"no {owner_type} {owner_id!r}")
    if owner_type == "assessment":
        owner = session.get(Assessment, owner_id)
        if owner is not None and owner.result != "pending":
            raise Conflict("a signed-off assessment is final; its evidence cannot change")
    name, kind = evidence.check(filename, data, settings.evidence_max_bytes)
    digest = evidence_store(settings).put(data)
    row = EvidenceFile(
        owner_type=owner_type,
        owner_id=owner_id,
        filename=name,
        kind=kind,
        size=len(data),
        sha256=digest,
        uploaded_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "evidence.added",
        actor=actor,
        subject_type=owner_type,
        subject_id=owner_id,
        data={"evidence": row.id, "kind": kind, "size": len(data), "sha256": digest},
    )
    return row


def evidence_for(session: Session, owner_type: str, owner_id: str) -> list[EvidenceFile]:
    return list(
        session.scalars(
            select(EvidenceFile)
            .where(EvidenceFile.owner_type == owner_type, EvidenceFile.owner_id == owner_id)
            .order_by(EvidenceFile.uploaded_at)
        )
    )


def read_evidence(session: Session, settings: Settings, evidence_id: str) -> tuple[EvidenceFile, bytes]:
    row = session.get(EvidenceFile, evidence_id)
    if row is None:
        raise NotFound(f"no evidence file {evidence_id!r}")
    return row, evidence_store(settings).get(row.sha256)


RECORD_TYPES = {
    "user_registration": "用户注册 / user registration",
    "algorithm_review": "算法机制机理审核 / algorithm review",
    "ethics_review": "科技伦理审查 / ethics review",
    "pre_publication_review": "信息发布审核 / pre-publication review",
    "data_security": "数据安全 / data security",
    "pi_protection": "个人信息保护 / personal-information protection",
    "anti_fraud": "反电信网络诈骗 / anti-fraud",
    "emergency_response": "应急处置 / emergency response",
}
"""The management systems DSP-7 requires, one record type each."""


def create_record(
    session: Session,
    *,
    record_type: str,
    title: str,
    owner: str,
    effective_on: dt.date,
    actor: str,
    body: str = "",
    algorithm_id: str | None = None,
) -> ManagementRecord:
    if record_type not in RECORD_TYPES:
        raise InvalidInput(f"record type must be one of {', '.join(RECORD_TYPES)}", field="record_type")
    if algorithm_id:
        get_algorithm(session, algorithm_id)
    record = ManagementRecord(
        record_type=record_type,
        title=_text(title, "title"),
        owner=_text(owner, "owner"),
        effective_on=effective_on,
        body=_text(body, "body", limit=50_000, required=False),
        algorithm_id=algorithm_id or None,
        created_by=actor,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        "management_record.created",
        actor=actor,
        subject_type="management_record",
        subject_id=record.id,
        data={
            "record_type": record_type,
            "effective_on": effective_on.isoformat(),
            "algorithm": algorithm_id,
        },
    )
    return record


def list_records(session: Session, *, algorithm_id: str | None = None) -> list[ManagementRecord]:
    query = select(ManagementRecord).order_by(
        ManagementRecord.record_type, ManagementRecord.effective_on.desc()
    )
    if algorithm_id:
        query = query.where(ManagementRecord.algorithm_id == algorithm_id)
    return list(session.scalars(query))


def get_record(session: Session, record_id: str) -> ManagementRecord:
    record = session.get(ManagementRecord, record_id)
    if record is None:
        raise NotFound(f"no management record {record_id!r}")
    return record


def missing_record_types(session: Session) -> list[str]:
    """DSP-7 systems with no record yet."""
    present = set(session.scalars(select(ManagementRecord.record_type).distinct()))
    return [t for t in RECORD_TYPES if t not in present]


def labeling_configuration(settings: Settings, service: Service | None = None) -> dict[str, Any]:
    """The labeling method and style in force: what LM-12 materials describe."""
    service_settings = service.settings if service is not None else {}
    return {
        "text_label": service_settings.get("label_text") or settings.label_text,
        "text_position": service_settings.get("label_position") or settings.label_position,
        "image_position": settings.label_image_position,
        "image_style": settings.label_image_style,
        "audio_cue": settings.label_audio_cue,
        "audio_placement": list(settings.label_audio_placement),
        "video_span": settings.label_video_span,
        "video_seconds": settings.label_video_seconds,
        "implicit": "GB 45438-2025 Annex E metadata label in every supported container",
        "c2pa": settings.c2pa_enabled,
        "provider_code": service.provider_code if service is not None else None,
    }


def add_labeling_material(
    session: Session,
    settings: Settings,
    algorithm: Algorithm,
    *,
    title: str,
    description: str,
    actor: str,
    assessment_id: str | None = None,
) -> LabelingMaterial:
    """Labeling materials filed with the algorithm and its security assessment (LM-12)."""
    if assessment_id:
        assessment = get_assessment(session, assessment_id)
        if assessment.algorithm_id not in (None, algorithm.id):
            raise InvalidInput("that assessment belongs to another algorithm", field="assessment_id")
    linked = session.scalar(select(Service).where(Service.algorithm_id == algorithm.id).limit(1))
    material = LabelingMaterial(
        algorithm_id=algorithm.id,
        assessment_id=assessment_id or None,
        title=_text(title, "title"),
        description=_text(description, "description", limit=20_000),
        configuration=labeling_configuration(settings, linked),
        created_by=actor,
    )
    session.add(material)
    session.flush()
    audit.record(
        session,
        "labeling_material.added",
        actor=actor,
        subject_type="algorithm",
        subject_id=algorithm.id,
        data={"material": material.id, "assessment": assessment_id},
    )
    return material


def list_materials(session: Session, algorithm: Algorithm) -> list[LabelingMaterial]:
    return list(
        session.scalars(
            select(LabelingMaterial)
            .where(LabelingMaterial.algorithm_id == algorithm.id)
            .order_by(LabelingMaterial.created_at)
        )
    )


# --- emergency suspension ------------------------------------------------------------------------

_FEATURE = re.compile(rf"^(medium:(text|image|audio|video)|{OPERATION_PATTERN})$")


def suspend(
    session: Session,
    service: Service,
    *,
    reason: str,
    actor: str,
    feature: str | None = None,
    until: dt.datetime | None = None,
    clause: str = "GAI-14",
    case_ref: str | None = None,
) -> Suspension:
    """Stop a whole service, or one feature (an operation, or ``medium:image``), at once."""
    chosen = (feature or "").strip() or None
    if chosen is not None and (not _FEATURE.match(chosen) or len(chosen) > OPERATION_MAX_LENGTH):
        raise InvalidInput("feature must be an operation (face.swap) or medium:image", field="feature")
    if until is not None and until <= utcnow():
        raise InvalidInput("until must be in the future", field="until")
    suspension = Suspension(
        service_id=service.id,
        feature=chosen,
        reason=_text(reason, "reason", limit=2000),
        clause=_text(clause, "clause", limit=32),
        case_ref=(case_ref or "").strip() or None,
        until=until,
        created_by=actor,
        started_at=utcnow(),
    )
    session.add(suspension)
    session.flush()
    _changed(session, "suspension")
    audit.record(
        session,
        "service.suspended",
        actor=actor,
        service_id=service.id,
        subject_type="suspension",
        subject_id=suspension.id,
        data={
            "feature": chosen,
            "reason": suspension.reason,
            "clause": suspension.clause,
            "until": until.isoformat() if until else None,
            "case": suspension.case_ref,
        },
    )
    return suspension


def lift_suspension(session: Session, suspension_id: str, *, actor: str) -> Suspension:
    suspension = session.get(Suspension, suspension_id)
    if suspension is None:
        raise NotFound(f"no suspension {suspension_id!r}")
    if suspension.lifted_at is not None:
        raise Conflict("this suspension was lifted already")
    suspension.lifted_at = utcnow()
    suspension.lifted_by = actor
    _changed(session, "suspension")
    audit.record(
        session,
        "service.suspension_lifted",
        actor=actor,
        service_id=suspension.service_id,
        subject_type="suspension",
        subject_id=suspension.id,
        data={"feature": suspension.feature},
    )
    return suspension


def list_suspensions(session: Session, *, active_only: bool = False) -> list[Suspension]:
    query = select(Suspension).order_by(Suspension.started_at.desc())
    if active_only:
        now = utcnow()
        query = query.where(
            Suspension.lifted_at.is_(None), (Suspension.until.is_(None)) | (Suspension.until > now)
        )
    return list(session.scalars(query))


def governance_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """This domain's figures for a transparency period [start, end)."""
    signed = session.execute(
        select(Assessment.kind, Assessment.result, func.count())
        .where(Assessment.signed_off_at >= start, Assessment.signed_off_at < end)
        .group_by(Assessment.kind, Assessment.result)
    ).all()
    filings_due = list(
        session.scalars(
            select(FilingObligation).where(FilingObligation.due_at >= start, FilingObligation.due_at < end)
        )
    )
    suspensions = session.scalar(
        select(func.count())
        .select_from(Suspension)
        .where(Suspension.started_at >= start, Suspension.started_at < end)
    )
    return {
        "assessments": {f"{kind}.{result}": count for kind, result, count in signed},
        "filings_due": len(filings_due),
        "filings_on_time": sum(1 for o in filings_due if o.filed_at is not None and o.filed_at <= o.due_at),
        "filings_late_or_open": sum(1 for o in filings_due if o.filed_at is None or o.filed_at > o.due_at),
        "suspensions": int(suspensions or 0),
    }
