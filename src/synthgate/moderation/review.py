"""The human review queue (DSP-10: technical *and human* review of inputs and synthesis results).

A ``review`` verdict holds the request: :func:`hold` stores the held content sealed with the key
store, in a queue by category and priority with a due time from the policy's SLA. A reviewer
*claims* an item (a lease, so two reviewers never decide the same item), then releases it,
withholds it, or escalates it to the second level (senior reviewers). A decision can propose the
item's hash for a bank or a term for the library (both still go through the library's four-eyes
approval). The provider hears the outcome through its callback (``review_callback_url``), signed
with HMAC-SHA256 under the service's webhook secret (``KeyStore.webhook_secret``, never stored; the
provider reads it with ``synthgate service webhook-secret``); a released item's callback carries
the content.
Every step appends an audit event in the same transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.db import Database, new_id, utcnow
from synthgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from synthgate.governance.models import Service
from synthgate.keys import KeyStore
from synthgate.media import MediaItem
from synthgate.moderation import service as library
from synthgate.moderation.models import ReviewItem
from synthgate.moderation.policy import DEFAULT_POLICY, PolicyDocument, Verdict

log = structlog.get_logger("synthgate.moderation.review")

LEASE_SECONDS = 15 * 60
"""How long a claim holds an item; an abandoned claim frees itself."""
Decision = Literal["release", "withhold", "escalate"]
DECIDED = ("released", "withheld")
SENIOR_ROLES = frozenset({"admin", "compliance"})
"""Who decides second-level (escalated) items."""
MAX_NOTE = 2000

ReleaseHook = Callable[[Session, ReviewItem, dict[str, Any]], dict[str, Any]]
release_hooks: list[ReleaseHook] = []
"""Called in order on release with the held content (``{"text", "media"}``); each returns the
content to deliver. The gateway registers one to run the remaining complete-phase stages (labels,
the generation record) on a released output."""


def _context(item_id: str) -> str:
    return f"review:{item_id}"


def _pdq_of(item: MediaItem) -> str | None:
    if item.medium != "image":
        return None
    from synthgate.moderation.detectors_media import Undecodable, decode_frames
    from synthgate.moderation.hashbank import pdq_of_image

    try:
        return pdq_of_image(decode_frames(item)[0])[0]
    except Undecodable:
        return None


def _describe(item: MediaItem) -> dict[str, str]:
    return {"container": item.container, "medium": item.medium, "role": item.role}


def hold(
    session: Session,
    keys: KeyStore,
    *,
    service: Service,
    produce_id: str,
    stage: str,
    verdict: Verdict | dict[str, Any],
    text: str | None = None,
    media: Sequence[MediaItem] = (),
    account_id: str | None = None,
    policy: PolicyDocument | None = None,
    actor: str | None = None,
) -> ReviewItem:
    """Queue content a ``review`` verdict held. Call it in the transaction that records the hold."""
    record = verdict.as_dict() if isinstance(verdict, Verdict) else dict(verdict)
    policy = policy or DEFAULT_POLICY
    findings = record.get("findings", [])
    held = [f for f in findings if f.get("action") == "review"] or findings
    category = str(held[0]["category"]) if held else "unspecified"
    categories = sorted({str(f["category"]) for f in findings})
    item_id = new_id()
    content = {
        "text": text,
        "media": [{**_describe(m), "data": base64.b64encode(m.data).decode()} for m in media],
    }
    now = utcnow()
    settings = service.settings or {}
    item = ReviewItem(
        id=item_id,
        service_id=service.id,
        produce_id=produce_id,
        account_id=account_id,
        stage=stage,
        medium=str(record.get("medium") or ("text" if not media else media[0].medium)),
        category=category[:32],
        categories=categories,
        priority=min(policy.priority_for(c) for c in categories) if categories else 3,
        status="pending",
        level=1,
        verdict=record,
        content=keys.encrypt(json.dumps(content, ensure_ascii=False), _context(item_id)),
        media_digests=[{**_describe(m), "sha256": m.sha256, "pdq": _pdq_of(m)} for m in media],
        created_at=now,
        due_at=now + dt.timedelta(minutes=policy.review_sla_minutes),
        callback_url=settings.get("review_callback_url"),
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        "moderation.review.held",
        actor=actor or f"service:{service.slug}",
        service_id=service.id,
        subject_type="review_item",
        subject_id=item.id,
        data={
            "produce_id": produce_id,
            "stage": stage,
            "category": item.category,
            "priority": item.priority,
            "due_at": item.due_at.isoformat(),
            "policy_version": record.get("policy_version"),
        },
    )
    return item


def hold_for_context(session: Session, keys: KeyStore, ctx: Any, stage_name: str) -> ReviewItem:
    """:func:`hold` for a pipeline request refused as ``moderation.held`` by the screening stage
    ``stage_name``: reads the gateway's ``GenerationContext`` (typed ``Any``: the gateway imports
    this domain, not the other way round). Call it in the transaction that records the refusal."""
    output = stage_name.startswith("output") or ctx.output_text is not None or bool(ctx.output_media)
    verdict = ctx.verdicts.get(stage_name) or {}
    return hold(
        session,
        keys,
        service=ctx.service,
        produce_id=ctx.produce_id,
        stage="output" if output else "input",
        verdict=verdict,
        text=(ctx.output_text if output else ctx.input_text),
        media=list(ctx.output_media if output else ctx.input_media),
        account_id=ctx.account_id,
        policy=ctx.moderation.policy if ctx.moderation is not None else None,
    )


def get(session: Session, item_id: str) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"no review item {item_id}")
    return item


def held_content(keys: KeyStore, item: ReviewItem) -> dict[str, Any]:
    """The held text and files (``{"text", "media": [{"data": base64, …}]}``); empty once dropped."""
    if item.content is None:
        return {"text": None, "media": []}
    loaded: dict[str, Any] = json.loads(keys.decrypt(item.content, _context(item.id)))
    return loaded


def is_overdue(item: ReviewItem, now: dt.datetime | None = None) -> bool:
    return item.status not in DECIDED and item.due_at <= (now or utcnow())


@dataclass(frozen=True)
class QueueCount:
    category: str
    level: int
    pending: int
    overdue: int


def queue(
    session: Session,
    *,
    category: str | None = None,
    level: int | None = None,
    decided: bool = False,
    limit: int = 100,
) -> list[ReviewItem]:
    """Open items, most urgent first (priority, then due time); or the latest decided ones."""
    query = select(ReviewItem)
    if decided:
        query = query.where(ReviewItem.status.in_(DECIDED)).order_by(ReviewItem.decided_at.desc())
    else:
        query = query.where(ReviewItem.status == "pending").order_by(
            ReviewItem.priority, ReviewItem.due_at, ReviewItem.id
        )
    if category:
        query = query.where(ReviewItem.category == category)
    if level:
        query = query.where(ReviewItem.level == level)
    return list(session.scalars(query.limit(limit)))


def counts(session: Session) -> list[QueueCount]:
    """Open items per queue (category × level), with how many are overdue."""
    now = utcnow()
    rows = session.execute(
        select(
            ReviewItem.category,
            ReviewItem.level,
            func.count(),
            func.sum(case((ReviewItem.due_at <= now, 1), else_=0)),
        )
        .where(ReviewItem.status == "pending")
        .group_by(ReviewItem.category, ReviewItem.level)
        .order_by(ReviewItem.category, ReviewItem.level)
    )
    return [QueueCount(c, lv, int(n), int(o or 0)) for c, lv, n, o in rows]


def _may_work_on(item: ReviewItem, role: str) -> None:
    if item.level >= 2 and role not in SENIOR_ROLES:
        raise Forbidden(
            "this item was escalated to the second level: a compliance officer or admin decides it",
            code="moderation.review.level",
        )


def claim(session: Session, item_id: str, *, actor: str, role: str) -> ReviewItem:
    """Take the item for ``LEASE_SECONDS``. Locked row: of two simultaneous claims one wins."""
    item = session.get(ReviewItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound(f"no review item {item_id}")
    if item.status in DECIDED:
        raise Conflict(f"this item was {item.status} already")
    _may_work_on(item, role)
    now = utcnow()
    if item.claimed_by not in (None, actor) and item.lease_until is not None and item.lease_until > now:
        raise Conflict(f"{item.claimed_by} is reviewing this item until {item.lease_until:%H:%M:%S} UTC")
    item.claimed_by = actor
    item.lease_until = now + dt.timedelta(seconds=LEASE_SECONDS)
    audit.record(
        session,
        "moderation.review.claimed",
        actor=actor,
        service_id=item.service_id,
        subject_type="review_item",
        subject_id=item.id,
        data={"lease_until": item.lease_until.isoformat(), "level": item.level},
    )
    return item


def decide(
    session: Session,
    keys: KeyStore,
    item_id: str,
    *,
    actor: str,
    role: str,
    decision: str,
    category: str = "",
    note: str = "",
    add_to_bank: str | None = None,
    propose_term: str | None = None,
) -> ReviewItem:
    """Release, withhold or escalate an item the actor holds the lease on."""
    if decision not in ("release", "withhold", "escalate"):
        raise InvalidInput("decision is release, withhold or escalate", field="decision")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters", field="note")
    item = session.get(ReviewItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound(f"no review item {item_id}")
    if item.status in DECIDED:
        raise Conflict(f"this item was {item.status} already")
    _may_work_on(item, role)
    now = utcnow()
    if item.claimed_by != actor or item.lease_until is None or item.lease_until <= now:
        raise Conflict("claim the item first (your claim may have run out)")
    chosen = library.validate_category(category.strip()) if category.strip() else item.category
    data: dict[str, Any] = {"decision": decision, "category": chosen, "level": item.level, "note": note[:500]}
    if decision == "escalate":
        if item.level >= 2:
            raise Conflict("this item is at the second level already")
        item.level = 2
        item.claimed_by = None
        item.lease_until = None
        item.decision_note = note
        audit.record(
            session,
            "moderation.review.escalated",
            actor=actor,
            service_id=item.service_id,
            subject_type="review_item",
            subject_id=item.id,
            data=data,
        )
        return item
    proposals: list[library.Proposal] = []
    if add_to_bank:
        bank = library.validate_bank(add_to_bank.strip())
        for digest in item.media_digests:
            kind, value = ("pdq", digest["pdq"]) if digest.get("pdq") else ("sha256", digest["sha256"])
            proposals.append(
                library.Proposal(
                    kind,
                    value,
                    chosen,
                    source=f"review:{item.id}",
                    reason=note or "review decision",
                    rule="review-decision",
                    bank=bank,
                )
            )
        if not proposals:
            raise InvalidInput("the item holds no file whose hash could go into a bank", field="add_to_bank")
    if propose_term and propose_term.strip():
        proposals.append(
            library.Proposal(
                "term",
                propose_term.strip(),
                chosen,
                source=f"review:{item.id}",
                reason=note or "review decision",
                rule="review-decision",
            )
        )
    proposed = library.propose(session, proposals, actor=actor) if proposals else []
    item.status = "released" if decision == "release" else "withheld"
    item.decided_by = actor
    item.decided_at = now
    item.decision_category = chosen
    item.decision_note = note
    item.claimed_by = None
    item.lease_until = None
    item.callback_status = "pending" if item.callback_url else "none"
    if not item.callback_url:
        item.content = None  # nobody to deliver to: the held content is not kept past the decision
    data["proposed_entries"] = [e.id for e in proposed]
    audit.record(
        session,
        "moderation.review.decided",
        actor=actor,
        service_id=item.service_id,
        subject_type="review_item",
        subject_id=item.id,
        data={**data, "produce_id": item.produce_id, "overdue": item.due_at <= now},
    )
    return item


def callback_body(keys: KeyStore, item: ReviewItem, content: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": f"review.{item.status}",
        "review_id": item.id,
        "produce_id": item.produce_id,
        "stage": item.stage,
        "decision": item.status,
        "category": item.decision_category,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
    }
    if item.status == "released" and content is not None:
        body["output"] = content.get("text")
        body["media"] = [{"data": m["data"], "container": m["container"]} for m in content.get("media", [])]
    return body


def sign(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def deliver_callback(
    db: Database, keys: KeyStore, item_id: str, *, actor: str = "system", timeout: float = 10.0
) -> str:
    """POST the decision to the provider; returns the callback status. The held content is dropped
    once delivered. Failures are recorded and can be retried (``review retry`` / the console)."""
    with db.session() as session:
        item = get(session, item_id)
        if item.callback_status not in ("pending", "failed") or not item.callback_url:
            return item.callback_status
        service = session.get(Service, item.service_id)
        assert service is not None
        content = held_content(keys, item)
        if item.status == "released":
            for hook in release_hooks:
                content = hook(session, item, content)
        payload = json.dumps(callback_body(keys, item, content), ensure_ascii=False).encode()
        secret = keys.webhook_secret(service.id)
        url = item.callback_url
    headers = {
        "content-type": "application/json",
        "x-synthgate-event": f"review.{item.status}",
        "x-synthgate-signature": sign(secret, payload),
    }
    error = ""
    try:
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            response = client.post(url, content=payload, headers=headers)
        if response.status_code >= 300:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    with db.session() as session:
        item = get(session, item_id)
        item.callback_attempts += 1
        item.callback_status = "failed" if error else "delivered"
        item.callback_error = error
        if not error:
            item.content = None
        audit.record(
            session,
            "moderation.review.callback",
            actor=actor,
            service_id=item.service_id,
            subject_type="review_item",
            subject_id=item.id,
            data={"status": item.callback_status, "attempt": item.callback_attempts, "error": error},
        )
        if error:
            log.warning("review.callback_failed", review_id=item.id, error=error)
        return item.callback_status


def period_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The review queue's figures for [start, end) (read only; the transparency report).

    ``held`` counts items put in the queue in the period; ``released`` / ``withheld`` and the decision
    times count items decided in it; ``decided_within_sla`` compares each decision with its due time.
    """
    held = session.scalar(
        select(func.count())
        .select_from(ReviewItem)
        .where(ReviewItem.created_at >= start, ReviewItem.created_at < end)
    )
    decided = session.scalars(
        select(ReviewItem).where(
            ReviewItem.decided_at.is_not(None), ReviewItem.decided_at >= start, ReviewItem.decided_at < end
        )
    ).all()
    times = [(item, item.decided_at) for item in decided if item.decided_at is not None]
    minutes = sorted((at - item.created_at).total_seconds() / 60 for item, at in times)
    pending = session.scalar(
        select(func.count())
        .select_from(ReviewItem)
        .where(ReviewItem.status == "pending", ReviewItem.created_at < end)
    )
    return {
        "held": int(held or 0),
        "released": sum(1 for item, _ in times if item.status == "released"),
        "withheld": sum(1 for item, _ in times if item.status == "withheld"),
        "decided_at_level_2": sum(1 for item, _ in times if item.level == 2),
        "decided_within_sla": sum(1 for item, at in times if at <= item.due_at),
        "median_decision_minutes": round(minutes[len(minutes) // 2], 1) if minutes else None,
        "pending_at_end": int(pending or 0),
    }
