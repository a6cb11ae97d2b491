"""Complaints, cases, decisions, actions and appeals: the only code that writes the cases tables.

DSP-12 / GAI-15: a public channel with a published process and deadlines (``file_complaint``).
DSP-10 / GAI-14: disposal with records (``decide``: takedown into the hash bank, sanctions through
the identity service, reports to the authority). DSP-11: refutations. Appeals (``file_appeal``,
``decide_appeal``) are decided by someone other than the original decider and an overturn reverts
every action the decision took. Every state change appends an audit event in the same
transaction; audit data holds ids, never the complainant's words or address.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.cases import process
from synthgate.cases.delivery import (
    DeliveryError,
    Message,
    authority_transports,
    case_notifiers,
)
from synthgate.cases.models import (
    Appeal,
    AuthorityReport,
    Case,
    CaseAction,
    Complaint,
    Decision,
    Notice,
    Refutation,
)
from synthgate.config import Settings
from synthgate.db import utcnow
from synthgate.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from synthgate.identity import service as identity
from synthgate.identity.models import Account
from synthgate.keys import KeyStore
from synthgate.media import MediaItem, MediaLimits
from synthgate.media.limits import decoded_frames
from synthgate.moderation import service as moderation
from synthgate.provenance import digests as content_digests
from synthgate.provenance import service as provenance

log = structlog.get_logger("synthgate.cases")

MAX_DESCRIPTION = 5000
MAX_CONTACT = 200
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s]{2,}$")
_TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# What a declared type (multipart Content-Type or file extension) may be, by sniffed container.
_DECLARED: dict[str, set[str]] = {
    "jpeg": {"image/jpeg", "image/jpg", "image/pjpeg", "jpg", "jpeg"},
    "png": {"image/png", "png"},
    "webp": {"image/webp", "webp"},
    "gif": {"image/gif", "gif"},
    "tiff": {"image/tiff", "tif", "tiff"},
    "wav": {"audio/wav", "audio/x-wav", "audio/wave", "wav"},
    "mp3": {"audio/mpeg", "audio/mp3", "mp3"},
    "flac": {"audio/flac", "audio/x-flac", "flac"},
    "ogg": {"audio/ogg", "application/ogg", "ogg", "oga"},
    "mp4": {"video/mp4", "video/quicktime", "mp4", "mov", "m4v", "m4a", "audio/mp4"},
    "mkv": {"video/x-matroska", "video/webm", "audio/webm", "mkv", "webm"},
    "html": {"text/html", "html", "htm"},
    "markdown": {"text/plain", "text/markdown", "txt", "md"},
    "docx": {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
}
_GENERIC_TYPES = {"", "application/octet-stream"}


# --- anti-spam: signed single-use tokens, a proof of work for API clients, a honeypot --------------


def issue_challenge(keys: KeyStore, now: dt.datetime | None = None) -> str:
    """A token ``<issued>.<nonce>.<mac>``: proves the form (or challenge) came from us, and when."""
    issued = int((now or utcnow()).timestamp())
    body = f"{issued}.{secrets.token_urlsafe(12)}"
    return f"{body}.{keys.mac('complaint-challenge', body)}"


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        bits += 8 - byte.bit_length()
        break
    return bits


def solve_pow(token: str, bits: int) -> str:
    """What an API client does (the SDK and tests use it): find a nonce with ``bits`` zero bits."""
    n = 0
    while leading_zero_bits(hashlib.sha256(f"{token}:{n}".encode()).digest()) < bits:
        n += 1
    return str(n)


def check_challenge(
    keys: KeyStore,
    settings: Settings,
    token: str,
    *,
    channel: str,
    nonce: str | None = None,
    honeypot: str = "",
    now: dt.datetime | None = None,
) -> str:
    """Validate the anti-spam token; returns its lookup hash (each token files one complaint).

    Web forms must wait a few seconds (a person reads and types) and leave the hidden honeypot
    field empty; API clients pay a proof of work instead (the challenge from
    ``GET /v1/complaints/challenge``). No third party sees the complainant.
    """
    if honeypot.strip():
        raise InvalidInput(
            "the form was filled in by a program (a hidden field was set)", code="complaint.spam"
        )
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        raise InvalidInput(
            "missing or malformed anti-spam token; load the form again", code="complaint.token"
        )
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], keys.mac("complaint-challenge", body)):
        raise InvalidInput("the anti-spam token is not ours; load the form again", code="complaint.token")
    age = (now or utcnow()).timestamp() - int(parts[0])
    if age > settings.complaint_token_max_age_seconds or age < -5:
        raise InvalidInput("the form has expired; load it again", code="complaint.token_expired")
    if channel == "web" and age < settings.complaint_form_min_seconds:
        raise InvalidInput(
            "the form was sent back too fast; wait a moment and send it again", code="complaint.spam"
        )
    if channel == "api":
        if nonce is None or len(nonce) > 32:
            raise InvalidInput(
                "send the proof-of-work nonce for the challenge", code="complaint.pow", field="nonce"
            )
        digest = hashlib.sha256(f"{token}:{nonce}".encode()).digest()
        if leading_zero_bits(digest) < settings.complaint_pow_bits:
            raise InvalidInput(
                f"the proof of work needs {settings.complaint_pow_bits} leading zero bits",
                code="complaint.pow",
                field="nonce",
            )
    return keys.lookup_hash(token, "complaint-challenge")


# --- intake -------------------------------------------------------------------------------------


@dataclass
class ComplaintInput:
    category: str
    description: str
    contact: str | None = None
    content_url: str | None = None
    produce_id: str | None = None
    upload: bytes | None = None
    upload_declared: str = ""
    """The type the upload claims: its multipart Content-Type and/or file extension."""


@dataclass
class Receipt:
    tracking_number: str
    case_id: str
    complaint_id: str
    received_at: dt.datetime
    due_at: dt.datetime
    provisional: bool
    merged: bool
    process: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tracking_number": self.tracking_number,
            "received_at": self.received_at.isoformat(),
            "deadline": self.due_at.isoformat(),
            "deadline_provisional": self.provisional,
            "status_url": f"/complaints/status/{self.tracking_number}",
            "process": self.process,
        }


def new_tracking_number() -> str:
    """100 random bits in Crockford base 32, grouped for reading aloud: ``SG-XXXXX-XXXXX-XXXXX-XXXXX``."""
    value = secrets.randbits(100)
    chars = []
    for _ in range(20):
        value, rem = divmod(value, 32)
        chars.append(_TRACKING_ALPHABET[rem])
    return "SG-" + "-".join("".join(chars[i : i + 5]) for i in range(0, 20, 5))


def normalise_tracking(value: str) -> str:
    cleaned = value.strip().upper().replace("O", "0").replace("I", "1").replace("L", "1")
    return cleaned


def _tracking_lookup(keys: KeyStore, number: str) -> str:
    return keys.lookup_hash(normalise_tracking(number), "complaint-tracking")


def _declared_matches(container: str, declared: str) -> bool:
    claims = {c.strip().lower() for c in declared.split(",") if c.strip()}
    claims -= _GENERIC_TYPES
    if not claims:
        return True
    return claims <= _DECLARED.get(container, {container})


def _check_upload(settings: Settings, data: bytes, declared: str) -> MediaItem:
    limits = MediaLimits.from_settings(settings)
    item = MediaItem.from_bytes(data, role="evidence", limits=limits)  # sniffed by content
    if not _declared_matches(item.container, declared):
        raise InvalidInput(
            f"the file claims to be {declared} but its content is {item.container}",
            code="media.mismatch",
            field="file",
        )
    if item.medium == "image":
        # Decode the first frame: a bomb, a truncated or corrupt file is a clear 422 before anything
        # is stored (the header alone would pass).
        next(decoded_frames(data, limits), None)
    return item


def _evidence_cipher(keys: KeyStore) -> AESGCM:
    return AESGCM(keys.derive("complaint-evidence"))


def _store_evidence(keys: KeyStore, settings: Settings, complaint_id: str, data: bytes) -> str:
    relative = f"complaints/{complaint_id}.bin"
    path = settings.blob_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    nonce = secrets.token_bytes(12)
    path.write_bytes(nonce + _evidence_cipher(keys).encrypt(nonce, data, complaint_id.encode()))
    return relative


def load_evidence(keys: KeyStore, settings: Settings, complaint: Complaint) -> bytes | None:
    if not complaint.evidence_path:
        return None
    raw = (settings.blob_dir / complaint.evidence_path).read_bytes()
    return _evidence_cipher(keys).decrypt(raw[:12], raw[12:], complaint.id.encode())


def _validate(data: ComplaintInput) -> None:
    if data.category not in process.CATEGORIES:
        raise InvalidInput(f"category must be one of {', '.join(process.CATEGORIES)}", field="category")
    text = (data.description or "").strip()
    if not 10 <= len(text) <= MAX_DESCRIPTION:
        raise InvalidInput(f"describe the problem in 10 to {MAX_DESCRIPTION} characters", field="description")
    if data.contact and (len(data.contact) > MAX_CONTACT or not _EMAIL.match(data.contact.strip())):
        raise InvalidInput("contact must be an e-mail address (or left empty)", field="contact")
    given = [bool(data.upload), bool(data.content_url), bool(data.produce_id)]
    if not any(given):
        raise InvalidInput(
            "say which content you mean: upload it, give its URL or its produce id", field="content"
        )
    if data.content_url:
        parts = urlsplit(data.content_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or len(data.content_url) > 2000:
            raise InvalidInput("the URL must be an http(s) address", field="content_url")
    if data.produce_id and not _ULID.match(data.produce_id.strip().upper()):
        raise InvalidInput("a produce id is 26 characters (letters and digits)", field="produce_id")


def _rate_limit(session: Session, settings: Settings, client_lookup: str, now: dt.datetime) -> None:
    since = now - dt.timedelta(hours=1)
    rows = session.scalars(
        select(Complaint.created_at)
        .where(Complaint.client_lookup == client_lookup, Complaint.created_at >= since)
        .order_by(Complaint.created_at)
    ).all()
    if len(rows) >= settings.complaint_rate_per_hour:
        oldest = rows[0] if rows[0].tzinfo else rows[0].replace(tzinfo=dt.UTC)
        retry = max(1, int((oldest + dt.timedelta(hours=1) - now).total_seconds()) + 1)
        raise RateLimited(
            f"at most {settings.complaint_rate_per_hour} complaints per hour from one address; retry later",
            retry_after=retry,
        )


def _trace_links(session: Session, keys: KeyStore, data: bytes) -> list[dict[str, Any]]:
    """Generations behind an uploaded file: produce id in the metadata label, watermark, exact hash, PDQ."""
    result = provenance.trace(
        session, provenance.TraceInput(data, keys=keys), actor="system:cases", show_account=True
    )
    return [
        {
            "produce_id": m["generation"]["produce_id"],
            "account_id": m["generation"]["account_id"],
            "service_id": m["generation"]["service_id"],
            "strength": m["strength"],
            "matchers": [e["matcher"] for e in m["evidence"]],
        }
        for m in result.matches
    ]


def file_complaint(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    data: ComplaintInput,
    *,
    client: str,
    challenge_lookup: str,
    channel: str,
) -> Receipt:
    """Receive a complaint from the public (DSP-12): validate, rate-limit, link, merge, acknowledge."""
    now = utcnow()
    _validate(data)
    client_lookup = keys.lookup_hash(client, "complaint-client")
    _rate_limit(session, settings, client_lookup, now)
    if session.scalar(select(Complaint.id).where(Complaint.challenge_lookup == challenge_lookup)):
        raise Conflict(
            "this form was already sent; load it again to file another complaint", code="complaint.reused"
        )
    item = _check_upload(settings, data.upload, data.upload_declared) if data.upload else None
    links: list[dict[str, Any]] = []
    produce_id = data.produce_id.strip().upper() if data.produce_id else None
    if item is not None:
        links = _trace_links(session, keys, item.data)
    elif produce_id:
        try:
            generation = provenance.get_generation(session, produce_id)
        except NotFound:
            generation = None  # the complainant may have mistyped; the reviewer sees "not found"
        if generation is not None:
            links = [
                {
                    "produce_id": generation.produce_id,
                    "account_id": generation.account_id,
                    "service_id": generation.service_id,
                    "strength": 1.0,
                    "matchers": ["produce_id"],
                }
            ]
    primary = links[0] if links else None
    # Identity of the content for merging: the generation when known, else the file or the URL.
    if primary is not None:
        identity_key = f"produce:{primary['produce_id']}"
    elif item is not None:
        identity_key = f"sha256:{item.sha256}"
    elif produce_id:
        identity_key = f"produce:{produce_id}"
    else:
        assert data.content_url
        identity_key = f"url:{data.content_url.strip()}"
    dedupe_key = hashlib.sha256(f"{data.category}|{identity_key}".encode()).hexdigest()
    case = session.scalar(
        select(Case).where(Case.dedupe_key == dedupe_key, Case.status == "open").order_by(Case.created_at)
    )
    merged = case is not None
    if case is None:
        due = process.deadline(settings, now, settings.complaint_deadline_workdays)
        case = Case(
            dedupe_key=dedupe_key,
            category=data.category,
            status="open",
            created_at=now,
            due_at=due.due_at,
            deadline_provisional=due.provisional,
            content_kind="upload" if item else "produce_id" if produce_id else "url",
            content_url=data.content_url.strip() if data.content_url else None,
            content_sha256=item.sha256 if item else None,
            content_container=item.container if item else None,
            produce_id=primary["produce_id"] if primary else None,
            account_id=primary["account_id"] if primary else None,
            service_id=primary["service_id"] if primary else None,
            links=links,
        )
        session.add(case)
        session.flush()
    else:
        case.complaints += 1
    tracking = new_tracking_number()
    complaint = Complaint(
        case_id=case.id,
        tracking_lookup=_tracking_lookup(keys, tracking),
        challenge_lookup=challenge_lookup,
        client_lookup=client_lookup,
        category=data.category,
        description_enc=keys.encrypt(data.description.strip(), "complaint-description"),
        contact_enc=keys.encrypt(data.contact.strip(), "complaint-contact") if data.contact else None,
        channel=channel,
        merged=merged,
        created_at=now,
    )
    session.add(complaint)
    session.flush()
    if item is not None:
        complaint.evidence_path = _store_evidence(keys, settings, complaint.id, item.data)
    audit.record(
        session,
        "case.complaint_received",
        actor="public",
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={
            "complaint": complaint.id,
            "category": data.category,
            "channel": channel,
            "merged": merged,
            "content": case.content_kind,
            "linked": [link["produce_id"] for link in links][:10],
            "due_at": case.due_at.isoformat(),
            "clause": "DSP-12",
        },
    )
    return Receipt(
        tracking_number=tracking,
        case_id=case.id,
        complaint_id=complaint.id,
        received_at=now,
        due_at=case.due_at,
        provisional=case.deadline_provisional,
        merged=merged,
        process=process.published_process(settings),
    )


# --- public status -------------------------------------------------------------------------------


def status_for(session: Session, keys: KeyStore, tracking_number: str) -> dict[str, Any]:
    """What the complainant may see: their own complaint's state and the case's public outcome.

    An unknown number and a malformed one get the same answer, and nothing about other
    complainants, the account behind the content or the reviewers is shown.
    """
    complaint = session.scalar(
        select(Complaint).where(Complaint.tracking_lookup == _tracking_lookup(keys, tracking_number))
    )
    if complaint is None:
        raise NotFound("no complaint with this tracking number")
    case = session.get(Case, complaint.case_id)
    assert case is not None
    decisions = decisions_of(session, case.id)
    # The newest first-instance decision, and the answer to an appeal against it, if any.
    decision = next((d for d in reversed(decisions) if d.appeal_id is None), None)
    refutation = session.scalar(
        select(Refutation).where(Refutation.case_id == case.id, Refutation.withdrawn_at.is_(None))
    )
    decided_at = case.decided_at
    outcome: dict[str, Any] | None = None
    if decision is not None:
        statement = decision.statement or {}
        answer = next(
            (
                d
                for d in decisions
                if d.appeal_id and (d.statement or {}).get("appealed_decision") == decision.id
            ),
            None,
        )
        outcome = {
            "outcome": decision.outcome,
            "decided_at": _aware(decision.created_at).isoformat(),
            "ground": statement.get("ground"),
            "category": statement.get("category"),
            "actions": statement.get("actions", []),
            "automated_detection": statement.get("automated_detection"),
            "automated_decision": statement.get("automated_decision"),
            "appeal": {
                "result": answer.outcome,
                "decided_at": _aware(answer.created_at).isoformat(),
                "reasons": (answer.statement or {}).get("reasons"),
            }
            if answer is not None
            else None,
        }
    return {
        "received_at": _aware(complaint.created_at).isoformat(),
        "category": complaint.category,
        "category_label": process.CATEGORIES[complaint.category].label,
        "status": case.status,
        "deadline": _aware(case.due_at).isoformat(),
        "deadline_provisional": case.deadline_provisional,
        "decided_within_deadline": (_aware(decided_at) <= _aware(case.due_at)) if decided_at else None,
        "outcome": outcome,
        "refutation": f"/refutations/{refutation.id}" if refutation else None,
    }


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- triage -------------------------------------------------------------------------------------


def get_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def queue(session: Session, *, status: str | None = "open", limit: int = 200) -> list[Case]:
    stmt = select(Case)
    if status:
        stmt = stmt.where(Case.status == status)
    return list(session.scalars(stmt.order_by(Case.due_at, Case.created_at).limit(limit)))


def is_overdue(case: Case, now: dt.datetime | None = None) -> bool:
    return case.status == "open" and _aware(case.due_at) < (now or utcnow())


def workdays_left(settings: Settings, case: Case, now: dt.datetime | None = None) -> int:
    return process.calendar(settings).workdays_left(now or utcnow(), _aware(case.due_at))


def complaints_of(session: Session, keys: KeyStore, case: Case) -> list[dict[str, Any]]:
    """The case's complaints, decrypted for the reviewer (never shown publicly)."""
    rows = session.scalars(
        select(Complaint).where(Complaint.case_id == case.id).order_by(Complaint.created_at)
    )
    return [
        {
            "id": c.id,
            "received_at": c.created_at,
            "category": c.category,
            "channel": c.channel,
            "merged": c.merged,
            "description": keys.decrypt(c.description_enc, "complaint-description"),
            "has_contact": c.contact_enc is not None,
            "has_evidence": c.evidence_path is not None,
        }
        for c in rows
    ]


def assign(session: Session, case_id: str, assignee: str, *, actor: str) -> Case:
    case = get_case(session, case_id)
    if case.status not in ("open", "appealed"):
        raise Conflict(f"case {case_id} is {case.status}")
    case.assigned_to = assignee.strip() or None
    audit.record(
        session,
        "case.assigned",
        actor=actor,
        subject_type="case",
        subject_id=case.id,
        data={"assignee": case.assigned_to},
    )
    return case


def link_generation(session: Session, case_id: str, produce_id: str, *, actor: str) -> Case:
    """Link the case to a generation a reviewer found (e.g. by tracing a URL's file by hand)."""
    case = get_case(session, case_id)
    generation = provenance.get_generation(session, produce_id.strip().upper())
    case.produce_id = generation.produce_id
    case.account_id = generation.account_id
    case.service_id = generation.service_id
    case.links = [
        {
            "produce_id": generation.produce_id,
            "account_id": generation.account_id,
            "service_id": generation.service_id,
            "strength": 1.0,
            "matchers": ["reviewer"],
        },
        *[link for link in case.links or [] if link.get("produce_id") != generation.produce_id],
    ]
    audit.record(
        session,
        "case.linked",
        actor=actor,
        service_id=generation.service_id,
        subject_type="case",
        subject_id=case.id,
        data={"produce_id": generation.produce_id, "account": generation.account_id},
    )
    return case


# --- decisions and actions -----------------------------------------------------------------------


@dataclass
class SanctionInput:
    status: str
    """``warned``, ``restricted``, ``suspended`` or ``closed``."""
    restrictions: list[str] = field(default_factory=list)
    until: dt.datetime | None = None


@dataclass
class DecisionInput:
    outcome: str
    """``violation`` or ``no_violation``."""
    ground: str
    """The rule or law the decision rests on (e.g. "DSP-11; platform rules §4")."""
    category: str
    """The risk category (a TC-A code) found."""
    facts: str
    automated_detection: bool = False
    automated_decision: bool = False
    source: str = "complaint"
    takedown: bool = False
    refutation_title: str = ""
    refutation_body: str = ""
    sanction: SanctionInput | None = None


@dataclass
class Outcome:
    decision: Decision
    notices: list[str]
    """Notice ids to deliver after the commit."""


def current_decision(session: Session, case_id: str) -> Decision | None:
    """The decision in force: the newest one that was not overturned (an appeal's own decision aside)."""
    return session.scalar(
        select(Decision)
        .where(Decision.case_id == case_id, Decision.appeal_id.is_(None), Decision.overturned_at.is_(None))
        .order_by(Decision.created_at.desc())
        .limit(1)
    )


def _bank_hashes(session: Session, case: Case, keys: KeyStore, settings: Settings) -> dict[str, list[str]]:
    """SHA-256 and PDQ of the content: the generation's delivered files and the uploaded copy."""
    hashes: dict[str, list[str]] = {"sha256": [], "pdq": []}
    if case.produce_id:
        generation = provenance.get_generation(session, case.produce_id)
        for kind in ("sha256", "pdq"):
            hashes[kind].extend((generation.digests or {}).get(kind, []))
        if generation.medium == "text" and generation.output_sha256 not in hashes["sha256"]:
            hashes["sha256"].append(generation.output_sha256)
    for complaint in session.scalars(select(Complaint).where(Complaint.case_id == case.id)):
        data = load_evidence(keys, settings, complaint)
        if data is None:
            continue
        item = MediaItem.from_bytes(data, role="evidence", limits=MediaLimits.from_settings(settings))
        hashes["sha256"].append(item.sha256)
        hashes["pdq"].extend(content_digests.pdqs_of(item))
    return {kind: list(dict.fromkeys(values)) for kind, values in hashes.items()}


def _admit_to_bank(
    session: Session, hashes: dict[str, list[str]], category: str, *, case_id: str, actor: str
) -> list[str]:
    """Put the hashes in the feature library's hash bank and publish, so they block at once.

    The library's four-eyes rule holds: the case admits the entries (``case:<id>``) and the
    reviewer who decided the case approves them; the version is published in the same transaction.
    """
    admitted: list[str] = []
    for kind, values in hashes.items():
        for value in values:
            proposal = moderation.Proposal(
                kind=kind,
                value=value,
                category=category,
                severity=5,
                source=f"case {case_id}",
                reason=f"takedown decided in case {case_id}",
                rule="DSP-10 disposal",
            )
            try:
                with session.begin_nested():
                    entries = moderation.propose(session, [proposal], actor=f"case:{case_id}")
            except Conflict:
                continue  # already banked under this category: it blocks already
            admitted.extend(e.id for e in entries)
    if admitted:
        moderation.decide(session, admitted, approve=True, actor=actor, note=f"case {case_id}")
        moderation.publish(session, actor=actor, note=f"takedown, case {case_id}")
    return admitted


def _action(
    session: Session, case: Case, decision: Decision, kind: str, details: dict[str, Any], actor: str
) -> None:
    session.add(
        CaseAction(case_id=case.id, decision_id=decision.id, kind=kind, details=details, created_by=actor)
    )
    audit.record(
        session,
        f"case.action.{kind}",
        actor=actor,
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={"decision": decision.id, **details},
    )


def appeal_token(keys: KeyStore, decision_id: str, account_id: str) -> str:
    """The token in the affected user's notice that lets them appeal this decision (and only this)."""
    return keys.mac("case-appeal", f"{decision_id}:{account_id}")[:40]


def decide(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    case_id: str,
    data: DecisionInput,
    *,
    actor: str,
) -> Outcome:
    """Decide an open case with a statement of reasons and apply its actions (DSP-10/11, GAI-14)."""
    case = get_case(session, case_id)
    if case.status != "open":
        raise Conflict(f"case {case_id} is {case.status}; only open cases are decided")
    if data.outcome not in ("violation", "no_violation"):
        raise InvalidInput("outcome is violation or no_violation", field="outcome")
    if not data.ground.strip() or not data.facts.strip():
        raise InvalidInput("a decision states its ground and the facts", field="ground")
    category = moderation.validate_category(data.category.strip())
    if data.outcome == "no_violation" and (data.takedown or data.sanction or data.refutation_title):
        raise InvalidInput("no action follows a finding of no violation", field="outcome")
    if data.sanction and not case.account_id:
        raise InvalidInput("no account is linked to this case; link the generation first", field="sanction")
    if data.sanction and data.sanction.status not in process.SANCTIONS:
        raise InvalidInput(f"sanction is one of {', '.join(process.SANCTIONS)}", field="sanction")
    if data.takedown and not case.produce_id and case.content_kind != "upload":
        raise InvalidInput(
            "nothing to take down: no generation linked and no file uploaded", field="takedown"
        )
    if bool(data.refutation_title.strip()) != bool(data.refutation_body.strip()):
        raise InvalidInput("a refutation needs a title and a text", field="refutation")
    now = utcnow()
    actions = [
        name
        for name, wanted in (
            ("takedown", data.takedown),
            ("refutation", bool(data.refutation_title.strip())),
            ("sanction", data.sanction is not None),
        )
        if wanted
    ]
    statement = {
        "ground": data.ground.strip()[:500],
        "category": category,
        "facts": data.facts.strip()[:4000],
        "automated_detection": data.automated_detection,
        "automated_decision": data.automated_decision,
        "source": data.source[:100],
        "actions": [
            f"sanction:{data.sanction.status}" if a == "sanction" and data.sanction else a for a in actions
        ],
    }
    decision = Decision(
        case_id=case.id, outcome=data.outcome, decided_by=actor, statement=statement, created_at=now
    )
    session.add(decision)
    session.flush()
    case.status = "decided"
    case.decided_at = now
    audit.record(
        session,
        "case.decided",
        actor=actor,
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={
            "decision": decision.id,
            "outcome": data.outcome,
            "category": category,
            "actions": statement["actions"],
            "within_deadline": now <= _aware(case.due_at),
            "clause": "DSP-10",
        },
    )
    if data.takedown:
        produce_ids = []
        if case.produce_id:
            provenance.mark_taken_down(session, case.produce_id, case_id=case.id, actor=actor)
            produce_ids.append(case.produce_id)
        hashes = _bank_hashes(session, case, keys, settings)
        entries = _admit_to_bank(session, hashes, category, case_id=case.id, actor=actor)
        _action(
            session,
            case,
            decision,
            "takedown",
            {
                "produce_ids": produce_ids,
                "library_entries": entries,
                "hashes": {k: len(v) for k, v in hashes.items()},
                "clause": "DSP-10",
            },
            actor,
        )
    if data.refutation_title.strip():
        ref = Refutation(
            case_id=case.id,
            title=data.refutation_title.strip()[:200],
            body=data.refutation_body.strip()[:20000],
            content_ref=case.produce_id or case.content_sha256 or (case.content_url or "")[:200],
            published_by=actor,
            published_at=now,
        )
        session.add(ref)
        session.flush()
        _action(session, case, decision, "refutation", {"refutation": ref.id, "clause": "DSP-11"}, actor)
    if data.sanction is not None:
        account = session.get(Account, case.account_id)
        if account is None:
            raise NotFound("the linked account no longer exists")
        before = {
            "status": identity.effective_status(account),
            "until": account.status_until.isoformat()
            if account.status_until and identity.effective_status(account) != "active"
            else None,
            "restrictions": list(account.restrictions or [])
            if identity.effective_status(account) != "active"
            else [],
            "reason": account.status_reason,
        }
        change = identity.set_status(
            session,
            account,
            data.sanction.status,
            reason=f"case {case.id}: {statement['ground']}",
            operator=actor,
            expires_at=data.sanction.until,
            restrictions=data.sanction.restrictions or None,
        )
        _action(
            session,
            case,
            decision,
            "sanction",
            {
                "account": account.id,
                "status": data.sanction.status,
                "restrictions": change.restrictions,
                "until": data.sanction.until.isoformat() if data.sanction.until else None,
                "before": before,
                "clause": "DSP-10",
            },
            actor,
        )
    notices = _notify_decision(session, keys, settings, case, decision)
    return Outcome(decision, notices)


# --- notices --------------------------------------------------------------------------------------


_TEMPLATES: dict[str, tuple[str, str]] = {
    "complainant.decided": (
        "Your complaint has been decided",
        "We have decided the complaint you filed on {received}.\n\nOutcome: {outcome}\nGround: {ground}\n"
        "Actions: {actions}\n\nFollow it at {status_url} with your tracking number.\n",
    ),
    "complainant.appeal_decided": (
        "The decision on your complaint was reviewed on appeal",
        "The user affected by the decision on your complaint appealed. A second reviewer {result} "
        "the decision.\nReasons: {reasons}\n\nFollow it at {status_url} with your tracking number.\n",
    ),
    "user.decided": (
        "A decision about content you generated",
        "After a complaint we reviewed content generated with your account (produce id {produce_id}).\n\n"
        "Outcome: {outcome}\nGround: {ground}\nFacts: {facts}\nActions: {actions}\n"
        "Automated detection: {automated_detection}; automated decision: {automated_decision}\n\n"
        "You may appeal within {appeal_days} working days: {appeal_url}\n",
    ),
    "user.appeal_decided": (
        "Your appeal has been decided",
        "A second reviewer {result} the decision you appealed.\nReasons: {reasons}\n{reverted}\n",
    ),
}


def _notice(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    case: Case,
    *,
    recipient: str,
    ref: str,
    address: str | None,
    template: str,
    values: dict[str, Any],
) -> Notice:
    subject, body = _TEMPLATES[template]
    notifier = settings.cases_notifiers.get(recipient, "log")
    notice = Notice(
        case_id=case.id,
        recipient=recipient,
        recipient_ref=ref,
        template=template,
        notifier=notifier,
        address_enc=keys.encrypt(address, "case-notice-address") if address else None,
        subject=subject,
        body_enc=keys.encrypt(body.format(**values), "case-notice-body"),
    )
    session.add(notice)
    session.flush()
    audit.record(
        session,
        "case.notice_queued",
        actor="system:cases",
        subject_type="case",
        subject_id=case.id,
        data={
            "notice": notice.id,
            "recipient": recipient,
            "ref": ref,
            "template": template,
            "notifier": notifier,
        },
    )
    return notice


def _complainants(session: Session, case: Case) -> list[Complaint]:
    return list(session.scalars(select(Complaint).where(Complaint.case_id == case.id)))


def _notify_decision(
    session: Session, keys: KeyStore, settings: Settings, case: Case, decision: Decision
) -> list[str]:
    st = decision.statement
    values = {
        "outcome": decision.outcome.replace("_", " "),
        "ground": st["ground"],
        "facts": st["facts"],
        "actions": ", ".join(st["actions"]) or "none",
        "status_url": f"{settings.public_base_url}/complaints/status",
        "automated_detection": "yes" if st["automated_detection"] else "no",
        "automated_decision": "yes" if st["automated_decision"] else "no",
        "produce_id": case.produce_id or "-",
        "appeal_days": settings.appeal_deadline_workdays,
    }
    ids = []
    for complaint in _complainants(session, case):
        address = keys.decrypt(complaint.contact_enc, "complaint-contact") if complaint.contact_enc else None
        if address is None:
            continue  # no contact given: the status page is their channel
        ids.append(
            _notice(
                session,
                keys,
                settings,
                case,
                recipient="complainant",
                ref=complaint.id,
                address=address,
                template="complainant.decided",
                values={**values, "received": complaint.created_at.date().isoformat()},
            ).id
        )
    if case.account_id and decision.outcome == "violation":
        token = appeal_token(keys, decision.id, case.account_id)
        url = f"{settings.public_base_url}/appeals/{decision.id}?token={token}"
        ids.append(
            _notice(
                session,
                keys,
                settings,
                case,
                recipient="user",
                ref=case.account_id,
                address=None,
                template="user.decided",
                values={**values, "appeal_url": url},
            ).id
        )
    return ids


def notifier_for(settings: Settings, keys: KeyStore, name: str) -> Any:
    if name == "webhook":
        return case_notifiers.create(name, settings, keys.derive("case-webhook"))
    return case_notifiers.create(name, settings)


def deliver_notice(session: Session, keys: KeyStore, settings: Settings, notice_id: str) -> Notice:
    """Send one notice now through its notifier; the outcome (and any error) is recorded on it."""
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    if notice.status == "sent":
        return notice
    body = keys.decrypt(notice.body_enc, "case-notice-body")
    address = keys.decrypt(notice.address_enc, "case-notice-address") if notice.address_enc else None
    message = Message(
        notice.recipient,
        notice.recipient_ref,
        address,
        notice.subject,
        body,
        {"case_ref": notice.case_id, "template": notice.template},
    )
    notice.attempts += 1
    try:
        receipt = notifier_for(settings, keys, notice.notifier).send(message)
    except DeliveryError as exc:
        notice.status = "failed"
        notice.last_error = str(exc)[:500]
        log.warning("cases.notice_failed", notice=notice.id, error=notice.last_error)
    else:
        notice.status = "sent"
        notice.sent_at = utcnow()
        notice.last_error = None
        audit.record(
            session,
            "case.notice_sent",
            actor="system:cases",
            subject_type="case",
            subject_id=notice.case_id,
            data={
                "notice": notice.id,
                "recipient": notice.recipient,
                "notifier": notice.notifier,
                "receipt": receipt[:200],
            },
        )
    return notice


def notice_body(keys: KeyStore, notice: Notice) -> str:
    return keys.decrypt(notice.body_enc, "case-notice-body")


# --- reports to the authority ---------------------------------------------------------------------


def authority_report(
    session: Session, settings: Settings, signing_key: Any, case_id: str, *, actor: str, note: str = ""
) -> AuthorityReport:
    """Queue a structured report with the case's evidence bundle (signed audit export) in the outbox.

    The audit events of the case must be sequenced and checkpointed first (the router runs
    ``jobs.integrate_and_checkpoint``): the bundle proves them against a signed checkpoint.
    """
    from synthgate.audit.bundle import build_bundle

    case = get_case(session, case_id)
    decision = current_decision(session, case.id)
    if decision is None or decision.outcome != "violation":
        raise Conflict("only a case decided as a violation is reported to the authority")
    subjects = [case.id] + ([case.produce_id] if case.produce_id else [])
    bundle = build_bundle(
        session, signing_key, settings.audit_origin, account=case.account_id or case.id, produce_ids=subjects
    )
    actions = session.scalars(select(CaseAction).where(CaseAction.case_id == case.id)).all()
    report = {
        "format": "synthgate-authority-report/1",
        "case": case.id,
        "received_at": _aware(case.created_at).isoformat(),
        "complaints": case.complaints,
        "category": case.category,
        "content": {
            "kind": case.content_kind,
            "produce_id": case.produce_id,
            "sha256": case.content_sha256,
            "url": case.content_url,
        },
        "service_id": case.service_id,
        "account_id": case.account_id,
        "decision": {
            "id": decision.id,
            "decided_at": _aware(decision.created_at).isoformat(),
            "decided_by": decision.decided_by,
            **decision.statement,
        },
        "actions": [
            {"kind": a.kind, "status": a.status, "at": _aware(a.created_at).isoformat(), **a.details}
            for a in actions
        ],
        "note": note[:2000],
        "clauses": ["DSP-10", "GAI-14"]
        + (["DSP-11"] if any(a.kind == "refutation" for a in actions) else []),
    }
    row = AuthorityReport(
        case_id=case.id,
        report=report,
        bundle=bundle,
        transport=settings.authority_transport,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    session.add(
        CaseAction(
            case_id=case.id,
            decision_id=decision.id,
            kind="authority_report",
            details={"report": row.id},
            created_by=actor,
        )
    )
    audit.record(
        session,
        "case.reported",
        actor=actor,
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={
            "report": row.id,
            "transport": row.transport,
            "bundle_sha256": hashlib.sha256(bundle.encode()).hexdigest(),
            "clause": "DSP-10",
        },
    )
    return row


def deliver_report(session: Session, settings: Settings, report_id: str) -> AuthorityReport:
    row = session.get(AuthorityReport, report_id)
    if row is None:
        raise NotFound(f"no report {report_id}")
    if row.status == "delivered":
        return row
    row.attempts += 1
    try:
        receipt = authority_transports.create(row.transport, settings).deliver(row.id, row.report, row.bundle)
    except DeliveryError as exc:
        row.status = "failed"
        row.last_error = str(exc)[:500]
    else:
        row.status = "delivered"
        row.receipt = receipt[:500]
        row.delivered_at = utcnow()
        row.last_error = None
    audit.record(
        session,
        "case.report_delivery",
        actor="system:cases",
        subject_type="case",
        subject_id=row.case_id,
        data={"report": row.id, "status": row.status, "attempt": row.attempts, "error": row.last_error},
    )
    return row


def outbox(session: Session) -> tuple[list[AuthorityReport], list[Notice]]:
    reports = list(
        session.scalars(select(AuthorityReport).order_by(AuthorityReport.created_at.desc()).limit(200))
    )
    notices = list(session.scalars(select(Notice).order_by(Notice.created_at.desc()).limit(200)))
    return reports, notices


def pending_deliveries(session: Session) -> tuple[list[str], list[str]]:
    reports = list(session.scalars(select(AuthorityReport.id).where(AuthorityReport.status != "delivered")))
    notices = list(session.scalars(select(Notice.id).where(Notice.status != "sent", Notice.attempts < 10)))
    return reports, notices


# --- appeals --------------------------------------------------------------------------------------


def file_appeal(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    decision_id: str,
    grounds: str,
    *,
    token: str | None = None,
    account_id: str | None = None,
) -> Appeal:
    """The affected user appeals a decision, proven by the token in their notice or, through the
    service's API key, as the account the provider names. A decision that does not exist and one
    that is not theirs get the same answer, so nobody learns about other users' cases."""
    unknown = NotFound("no decision you can appeal with this reference", code="cases.no_such_decision")
    decision = session.get(Decision, decision_id) if len(decision_id) <= 32 else None
    case = session.get(Case, decision.case_id) if decision is not None else None
    if decision is None or case is None or not case.account_id or decision.appeal_id is not None:
        raise unknown
    if token is not None:
        if not hmac.compare_digest(token, appeal_token(keys, decision.id, case.account_id)):
            raise unknown
    elif account_id is None or account_id != case.account_id:
        raise unknown
    text = (grounds or "").strip()
    if not 10 <= len(text) <= MAX_DESCRIPTION:
        raise InvalidInput(
            f"give the grounds of the appeal in 10 to {MAX_DESCRIPTION} characters", field="grounds"
        )
    if decision.outcome != "violation" or decision.overturned_at is not None:
        raise Conflict("this decision took no action against you; there is nothing to appeal")
    if session.scalar(select(Appeal.id).where(Appeal.decision_id == decision.id)):
        raise Conflict("this decision has already been appealed", code="cases.already_appealed")
    now = utcnow()
    appeal_window = process.deadline(
        settings,
        decision.created_at if decision.created_at.tzinfo else decision.created_at.replace(tzinfo=dt.UTC),
        settings.appeal_deadline_workdays,
    )
    if now > appeal_window.due_at:
        raise Conflict("the appeal period of this decision has ended", code="cases.appeal_late")
    due = process.deadline(settings, now, settings.appeal_deadline_workdays)
    appeal = Appeal(
        case_id=case.id,
        decision_id=decision.id,
        account_id=case.account_id,
        grounds_enc=keys.encrypt(text, "case-appeal-grounds"),
        created_at=now,
        due_at=due.due_at,
    )
    session.add(appeal)
    session.flush()
    case.status = "appealed"
    audit.record(
        session,
        "case.appealed",
        actor=f"account:{case.account_id}",
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={
            "appeal": appeal.id,
            "decision": decision.id,
            "due_at": due.due_at.isoformat(),
            "clause": "DSP-12",
        },
    )
    return appeal


def get_appeal(session: Session, appeal_id: str) -> Appeal:
    appeal = session.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFound(f"no appeal {appeal_id}")
    return appeal


def appeals(session: Session, *, status: str | None = "open") -> list[Appeal]:
    stmt = select(Appeal)
    if status:
        stmt = stmt.where(Appeal.status == status)
    return list(session.scalars(stmt.order_by(Appeal.due_at)))


def appeal_grounds(keys: KeyStore, appeal: Appeal) -> str:
    return keys.decrypt(appeal.grounds_enc, "case-appeal-grounds")


def _revert(session: Session, case: Case, action: CaseAction, *, actor: str) -> str:
    details = action.details or {}
    if action.kind == "takedown":
        for produce_id in details.get("produce_ids", []):
            provenance.restore_taken_down(session, produce_id, case_id=case.id, actor=actor)
        entries = details.get("library_entries", [])
        for entry_id in entries:
            moderation.request_retirement(
                session, entry_id, actor=actor, reason=f"appeal overturned case {case.id}"
            )
        if entries:
            moderation.publish(session, actor=actor, note=f"appeal overturned case {case.id}")
        result = "content restored, hashes removed from the bank"
    elif action.kind == "refutation":
        ref = session.get(Refutation, details.get("refutation"))
        if ref is not None and ref.withdrawn_at is None:
            ref.withdrawn_at = utcnow()
        result = "refutation withdrawn"
    elif action.kind == "sanction":
        account = session.get(Account, details.get("account"))
        if account is None:
            return "account gone"
        before = details.get("before") or {}
        if account.status == "closed":
            # A closed account cannot be reopened (identity rule): the user registers again.
            return "account closed: cannot be reopened; the user may register again"
        status = before.get("status") or "active"
        until = before.get("until")
        expires = dt.datetime.fromisoformat(until) if until else None
        if expires is not None and expires <= utcnow():
            status, expires = "active", None
        identity.set_status(
            session,
            account,
            status,
            reason=f"case {case.id}: sanction lifted on appeal",
            operator=actor,
            expires_at=expires if status not in ("active", "closed") else None,
            restrictions=before.get("restrictions") or None,
        )
        result = f"sanction lifted (status {status})"
    else:
        return "kept (a report already sent is not withdrawn; the reversal is in the log)"
    action.status = "reverted"
    action.reverted_at = utcnow()
    return result


def decide_appeal(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    appeal_id: str,
    *,
    overturn: bool,
    reasons: str,
    actor: str,
) -> Outcome:
    """A second reviewer decides the appeal; overturning reverts every action the decision took."""
    appeal = get_appeal(session, appeal_id)
    if appeal.status != "open":
        raise Conflict(f"appeal {appeal_id} is {appeal.status}")
    decision = session.get(Decision, appeal.decision_id)
    assert decision is not None
    if decision.decided_by == actor:
        raise Forbidden(
            "the reviewer who made the decision may not decide its appeal", code="cases.second_reviewer"
        )
    if not reasons.strip():
        raise InvalidInput("an appeal decision states its reasons", field="reasons")
    case = get_case(session, appeal.case_id)
    now = utcnow()
    reverted: dict[str, str] = {}
    if overturn:
        for action in session.scalars(
            select(CaseAction).where(CaseAction.decision_id == decision.id, CaseAction.status == "applied")
        ):
            reverted[action.kind] = _revert(session, case, action, actor=actor)
        decision.overturned_at = now
    result = "overturned" if overturn else "upheld"
    answer = Decision(
        case_id=case.id,
        appeal_id=appeal.id,
        outcome=result,
        decided_by=actor,
        created_at=now,
        statement={"reasons": reasons.strip()[:4000], "appealed_decision": decision.id, "reverted": reverted},
    )
    session.add(answer)
    appeal.status = result
    appeal.decided_by = actor
    appeal.decided_at = now
    case.status = "decided"
    session.flush()
    audit.record(
        session,
        "case.appeal_decided",
        actor=actor,
        service_id=case.service_id,
        subject_type="case",
        subject_id=case.id,
        data={
            "appeal": appeal.id,
            "decision": decision.id,
            "result": result,
            "reverted": reverted,
            "within_deadline": now <= _aware(appeal.due_at),
            "clause": "DSP-12",
        },
    )
    values = {
        "result": result,
        "reasons": reasons.strip(),
        "status_url": f"{settings.public_base_url}/complaints/status",
        "reverted": "; ".join(reverted.values()) if reverted else "",
    }
    notices = [
        _notice(
            session,
            keys,
            settings,
            case,
            recipient="user",
            ref=appeal.account_id,
            address=None,
            template="user.appeal_decided",
            values=values,
        ).id
    ]
    for complaint in _complainants(session, case):
        if complaint.contact_enc:
            address = keys.decrypt(complaint.contact_enc, "complaint-contact")
            notices.append(
                _notice(
                    session,
                    keys,
                    settings,
                    case,
                    recipient="complainant",
                    ref=complaint.id,
                    address=address,
                    template="complainant.appeal_decided",
                    values=values,
                ).id
            )
    return Outcome(answer, notices)


def decisions_of(session: Session, case_id: str) -> list[Decision]:
    return list(
        session.scalars(select(Decision).where(Decision.case_id == case_id).order_by(Decision.created_at))
    )


def actions_of(session: Session, case_id: str) -> list[CaseAction]:
    return list(
        session.scalars(
            select(CaseAction).where(CaseAction.case_id == case_id).order_by(CaseAction.created_at)
        )
    )


# --- refutations (DSP-11) -------------------------------------------------------------------------


def refutations(session: Session, *, limit: int = 50) -> list[Refutation]:
    return list(
        session.scalars(
            select(Refutation)
            .where(Refutation.withdrawn_at.is_(None))
            .order_by(Refutation.published_at.desc())
            .limit(limit)
        )
    )


def get_refutation(session: Session, refutation_id: str) -> Refutation:
    ref = session.get(Refutation, refutation_id) if len(refutation_id) <= 32 else None
    if ref is None or ref.withdrawn_at is not None:
        raise NotFound("no such refutation")
    return ref


def feed(settings: Settings, items: Sequence[Refutation], kind: str) -> bytes:
    """The refutations as an Atom or RSS 2.0 feed (feedgen), newest first, each linked to its content."""
    from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

    base = settings.public_base_url
    fg = FeedGenerator()
    fg.id(f"{base}/refutations")
    fg.title("Refutations of false information")
    fg.description("Refutations published under DSP-11")
    fg.link(href=f"{base}/refutations", rel="alternate")
    fg.link(href=f"{base}/refutations/feed.{kind}", rel="self")
    fg.language("zh-CN")
    for ref in reversed(list(items)):  # feedgen prepends entries
        entry = fg.add_entry()
        entry.id(f"{base}/refutations/{ref.id}")
        entry.title(ref.title)
        entry.link(href=f"{base}/refutations/{ref.id}")
        entry.content(ref.body, type="text")
        entry.description(ref.body[:500])
        entry.published(_aware(ref.published_at))
        entry.updated(_aware(ref.published_at))
        entry.category(term=ref.content_ref, label="refutes")
    fg.updated(_aware(items[0].published_at) if items else utcnow())
    return fg.atom_str(pretty=True) if kind == "atom" else fg.rss_str(pretty=True)


# --- deadlines: reminders and escalation ---------------------------------------------------------


def check_deadlines(session: Session, settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Remind the assignee when the deadline is near and escalate on breach (audited, once each)."""
    now = now or utcnow()
    cal = process.calendar(settings)
    reminded = escalated = 0
    for case in session.scalars(select(Case).where(Case.status == "open")):
        due = _aware(case.due_at)
        if case.escalated_at is None and now > due:
            case.escalated_at = now
            escalated += 1
            audit.record(
                session,
                "case.deadline_breached",
                actor="system:cases",
                service_id=case.service_id,
                subject_type="case",
                subject_id=case.id,
                data={
                    "due_at": due.isoformat(),
                    "assigned_to": case.assigned_to,
                    "escalated_to": "compliance",
                    "clause": "DSP-12",
                },
            )
            log.warning("cases.deadline_breached", case=case.id, assigned_to=case.assigned_to)
        elif (
            case.reminded_at is None
            and now <= due
            and cal.workdays_left(now, due) <= settings.complaint_reminder_workdays
        ):
            case.reminded_at = now
            reminded += 1
            audit.record(
                session,
                "case.deadline_reminder",
                actor="system:cases",
                service_id=case.service_id,
                subject_type="case",
                subject_id=case.id,
                data={
                    "due_at": due.isoformat(),
                    "assigned_to": case.assigned_to,
                    "workdays_left": cal.workdays_left(now, due),
                },
            )
    for appeal in session.scalars(
        select(Appeal).where(Appeal.status == "open", Appeal.escalated_at.is_(None))
    ):
        if now > _aware(appeal.due_at):
            appeal.escalated_at = now
            escalated += 1
            audit.record(
                session,
                "case.deadline_breached",
                actor="system:cases",
                subject_type="case",
                subject_id=appeal.case_id,
                data={
                    "appeal": appeal.id,
                    "due_at": _aware(appeal.due_at).isoformat(),
                    "escalated_to": "compliance",
                    "clause": "DSP-12",
                },
            )
    return {"reminded": reminded, "escalated": escalated}


# --- figures for the transparency report ----------------------------------------------------------


def period_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Complaint handling in [start, end): received, decided (closed) and how fast, and the actions."""

    def count(model: Any, column: Any, *where: Any) -> int:
        return int(
            session.scalar(
                select(func.count()).select_from(model).where(column >= start, column < end, *where)
            )
            or 0
        )

    closed = session.execute(
        select(Complaint.created_at, Case.decided_at, Case.due_at)
        .join(Case, Case.id == Complaint.case_id)
        .where(Case.decided_at.is_not(None), Case.decided_at >= start, Case.decided_at < end)
    ).all()
    # decided_at is set on every row here (the query asks for it); the type does not know that.
    done = [(_aware(received), _aware(decided), _aware(due)) for received, decided, due in closed if decided]
    hours = [(decided - received).total_seconds() / 3600 for received, decided, _ in done]
    return {
        "complaints_received": count(Complaint, Complaint.created_at),
        "complaints_closed": len(done),
        "handled_within_deadline": sum(1 for _, decided, due in done if decided <= due),
        "median_handling_hours": round(statistics.median(hours), 2) if hours else None,
        "takedowns": count(CaseAction, CaseAction.created_at, CaseAction.kind == "takedown"),
        "refutations": count(Refutation, Refutation.published_at),
        "sanctions": count(CaseAction, CaseAction.created_at, CaseAction.kind == "sanction"),
        "appeals": count(Appeal, Appeal.created_at),
        "reversals": count(Appeal, Appeal.decided_at, Appeal.status == "overturned"),
        "authority_reports": count(AuthorityReport, AuthorityReport.created_at),
    }


def evidence_data_uri(keys: KeyStore, settings: Settings, complaint: Complaint) -> str | None:
    """An uploaded image as a data: URI for the console (other files are offered as their digest)."""
    data = load_evidence(keys, settings, complaint)
    if data is None:
        return None
    item = MediaItem.from_bytes(data, role="evidence", limits=MediaLimits.from_settings(settings))
    if item.medium != "image":
        return None
    return f"data:image/{item.container};base64," + base64.b64encode(data).decode()
