"""Writes the feature library (DSP-10, TC-8.1) and the moderation policies.

The library's procedure: an entry is *proposed* with its admission record (who, why, under
which admission rule), *approved* or rejected by a second person, and takes effect when a new
version is *published*. Workers notice the new version number with one cheap query per screening
and swap in the recompiled matcher (see ``screener.py``); until then they keep screening with
the version they have, so there is never a moment without screening.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import re2  # type: ignore[import-untyped]
from pydantic import ValidationError
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.db import utcnow
from synthgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from synthgate.governance.models import Service
from synthgate.moderation.hashbank import BankEntry
from synthgate.moderation.lexicon import EntryKind, LexiconEntry
from synthgate.moderation.models import LibraryEntry, LibraryVersion, ModerationPolicy
from synthgate.moderation.normalize import normalize_term
from synthgate.moderation.policy import DEFAULT_POLICY, EXTRA_CATEGORIES, TC_A_CATEGORIES, PolicyDocument

KINDS = ("term", "pattern", "sha256", "pdq", "allow")
MAX_VALUE_CHARS = 500
_CUSTOM_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,31}$")
_HEX = re.compile(r"^[0-9a-f]+$")

EXPORT_FIELDS = [
    "id",
    "kind",
    "value",
    "category",
    "severity",
    "source",
    "status",
    "admitted_by",
    "admitted_at",
    "admission_reason",
    "admission_rule",
    "decided_by",
    "decided_at",
    "added_in_version",
    "retired_in_version",
    "bank",
]
_BANK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DEFAULT_BANK = "default"


@dataclass(frozen=True)
class Proposal:
    kind: str
    value: str
    category: str
    severity: int = 5
    source: str = ""
    reason: str = ""
    rule: str = ""
    bank: str = DEFAULT_BANK
    """The named bank of a known-content hash (ignored for terms and patterns)."""


def _value_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


def validate_category(category: str) -> str:
    if category in TC_A_CATEGORIES or category in EXTRA_CATEGORIES or _CUSTOM_CATEGORY.match(category):
        return category
    raise InvalidInput(
        f"category {category!r} is neither a TC-A code (A.1.1 … A.5.2) nor a simple name", field="category"
    )


def validate_proposal(p: Proposal) -> Proposal:
    if p.kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    value = p.value.strip() if isinstance(p.value, str) else ""
    if not value or len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(f"value must be 1 to {MAX_VALUE_CHARS} characters", field="value")
    if p.kind in ("term", "allow") and not normalize_term(value):
        raise InvalidInput("the term is only spaces and symbols: it would never match", field="value")
    if p.kind == "pattern":
        try:
            re2.compile(value)
        except re2.error as exc:
            raise InvalidInput(f"the pattern is not valid RE2 syntax: {exc}", field="value") from exc
    if p.kind in ("sha256", "pdq"):
        value = value.lower()
        if len(value) != 64 or not _HEX.match(value):
            raise InvalidInput(f"a {p.kind} hash is 64 hexadecimal characters", field="value")
    if not isinstance(p.severity, int) or not 1 <= p.severity <= 5:
        raise InvalidInput("severity is an integer from 1 to 5", field="severity")
    bank = validate_bank(p.bank or DEFAULT_BANK) if p.kind in ("sha256", "pdq") else DEFAULT_BANK
    return Proposal(
        p.kind, value, validate_category(p.category), p.severity, p.source, p.reason, p.rule, bank
    )


def validate_bank(name: str) -> str:
    if not isinstance(name, str) or not _BANK_NAME.match(name):
        raise InvalidInput(
            f"bank {name!r}: lower-case letters, digits, '.', '_' or '-', at most 64", field="bank"
        )
    return name


def propose(session: Session, proposals: Sequence[Proposal], *, actor: str) -> list[LibraryEntry]:
    """Add entries awaiting approval. A value already live or pending under the same category
    is a conflict, so the library never holds the same rule twice."""
    checked = [validate_proposal(p) for p in proposals]
    keys = {_value_key(p.kind, p.value) for p in checked}
    existing: set[tuple[str, str]] = set()
    key_list = list(keys)
    for i in range(0, len(key_list), 500):
        rows = session.execute(
            select(LibraryEntry.value_key, LibraryEntry.category).where(
                LibraryEntry.value_key.in_(key_list[i : i + 500]),
                LibraryEntry.status.in_(("pending", "approved")),
            )
        )
        existing.update((k, c) for k, c in rows)
    entries = []
    seen: set[tuple[str, str]] = set()
    for p in checked:
        key = (_value_key(p.kind, p.value), p.category)
        if key in existing or key in seen:
            raise Conflict(f"the library already has {p.kind} {p.value!r} under {p.category}")
        seen.add(key)
        entries.append(
            LibraryEntry(
                kind=p.kind,
                value=p.value,
                value_key=key[0],
                category=p.category,
                severity=p.severity,
                source=p.source[:200],
                admitted_by=actor,
                admission_reason=p.reason,
                admission_rule=p.rule[:200],
                bank=p.bank,
            )
        )
    session.add_all(entries)
    session.flush()
    audit.record(
        session,
        "moderation.library.proposed",
        actor=actor,
        subject_type="library",
        subject_id="feature-library",
        data={"entries": len(entries), "ids": [e.id for e in entries[:100]]},
    )
    return entries


def decide(
    session: Session, entry_ids: Iterable[str], *, approve: bool, actor: str, note: str = ""
) -> list[LibraryEntry]:
    """Approve or reject pending entries. Four eyes: nobody approves what they admitted."""
    ids = list(entry_ids)
    entries = list(session.scalars(select(LibraryEntry).where(LibraryEntry.id.in_(ids))))
    if len(entries) != len(set(ids)):
        raise NotFound("some library entries do not exist")
    now = utcnow()
    for entry in entries:
        if entry.status != "pending":
            raise Conflict(f"entry {entry.id} is {entry.status}, not pending")
        if entry.admitted_by == actor:
            raise Forbidden(
                f"entry {entry.id} was admitted by {actor}; a second person must approve it",
                code="moderation.four_eyes",
            )
        entry.status = "approved" if approve else "rejected"
        entry.decided_by = actor
        entry.decided_at = now
        entry.decision_note = note
    audit.record(
        session,
        "moderation.library.approved" if approve else "moderation.library.rejected",
        actor=actor,
        subject_type="library",
        subject_id="feature-library",
        data={"entries": len(entries), "ids": ids[:100], "note": note[:500]},
    )
    return entries


def pending_ids(session: Session) -> list[str]:
    return list(session.scalars(select(LibraryEntry.id).where(LibraryEntry.status == "pending")))


def request_retirement(session: Session, entry_id: str, *, actor: str, reason: str) -> LibraryEntry:
    entry = session.get(LibraryEntry, entry_id)
    if entry is None:
        raise NotFound(f"no library entry {entry_id}")
    if entry.status != "approved":
        raise Conflict(f"entry {entry.id} is {entry.status}; only approved entries can be retired")
    entry.retire_requested = True
    audit.record(
        session,
        "moderation.library.retire_requested",
        actor=actor,
        subject_type="library_entry",
        subject_id=entry.id,
        data={"reason": reason[:500]},
    )
    return entry


def current_version(session: Session) -> int:
    """The newest published version: one primary-key lookup, cheap enough for every request."""
    return session.scalar(select(func.max(LibraryVersion.version))) or 0


_PUBLICATIONS = 0


def publications_in_process() -> int:
    """How many versions this process published: the compiled-library caches recheck on change."""
    return _PUBLICATIONS


def publish(session: Session, *, actor: str, note: str = "") -> LibraryVersion:
    """Make approved entries (and requested retirements) live as the next version."""
    global _PUBLICATIONS
    _PUBLICATIONS += 1  # the caches in this process look the newest version up again at once
    version = current_version(session) + 1
    added = _rowcount(
        session.execute(
            update(LibraryEntry)
            .where(LibraryEntry.status == "approved", LibraryEntry.added_in_version.is_(None))
            .values(added_in_version=version)
        )
    )
    retired = _rowcount(
        session.execute(
            update(LibraryEntry)
            .where(LibraryEntry.status == "approved", LibraryEntry.retire_requested.is_(True))
            .values(status="retired", retired_in_version=version)
        )
    )
    if not added and not retired:
        raise Conflict("nothing to publish: no approved additions or retirements since the last version")
    total = session.scalar(
        select(func.count()).select_from(LibraryEntry).where(LibraryEntry.status == "approved")
    )
    row = LibraryVersion(
        version=version, published_by=actor, note=note, entries=total or 0, added=added, retired=retired
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "moderation.library.published",
        actor=actor,
        subject_type="library_version",
        subject_id=str(version),
        data={"entries": row.entries, "added": added, "retired": retired, "note": note[:500]},
    )
    return row


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _live_at(version: int) -> Any:
    return (
        LibraryEntry.added_in_version.is_not(None),
        LibraryEntry.added_in_version <= version,
        or_(LibraryEntry.retired_in_version.is_(None), LibraryEntry.retired_in_version > version),
    )


def _live_rows(session: Session, version: int, kinds: tuple[str, ...]) -> Any:
    """(id, kind, value, category, severity) of the entries of ``kinds`` live in ``version``."""
    return session.execute(
        select(
            LibraryEntry.id,
            LibraryEntry.kind,
            LibraryEntry.value,
            LibraryEntry.category,
            LibraryEntry.severity,
        )
        .where(*_live_at(version), LibraryEntry.kind.in_(kinds))
        .order_by(LibraryEntry.id)
    )


def lexicon_entries(session: Session, version: int) -> list[LexiconEntry]:
    """The text entries (terms, patterns, allow-list) live in ``version``."""
    rows = _live_rows(session, version, ("term", "pattern", "allow"))
    return [LexiconEntry(i, cast(EntryKind, k), v, c, s) for i, k, v, c, s in rows]


def bank_entries(session: Session, version: int) -> list[BankEntry]:
    """The known-content hashes (SHA-256, PDQ) live in ``version``, each with its named bank."""
    rows = session.execute(
        select(
            LibraryEntry.id,
            LibraryEntry.kind,
            LibraryEntry.value,
            LibraryEntry.category,
            LibraryEntry.severity,
            LibraryEntry.bank,
        )
        .where(*_live_at(version), LibraryEntry.kind.in_(("sha256", "pdq")))
        .order_by(LibraryEntry.id)
    )
    return [BankEntry(i, k, v, c, s, b) for i, k, v, c, s, b in rows]


def banks_for(service: Service | None) -> frozenset[str]:
    """The named hash banks a service screens against (``settings["hash_banks"]``)."""
    names = (service.settings or {}).get("hash_banks") if service is not None else None
    if not names:
        return frozenset({DEFAULT_BANK})
    return frozenset(str(n) for n in names)


# --- import / export -------------------------------------------------------------------------


def parse_rows(data: bytes, fmt: str) -> list[dict[str, Any]]:
    """CSV (header row, EXPORT_FIELDS names) or JSON (a list of objects, or {"entries": [...]})."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the library file is not UTF-8 text") from exc
    if fmt == "json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"the library file is not valid JSON: {exc}") from exc
        if isinstance(loaded, dict):
            loaded = loaded.get("entries")
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise InvalidInput('a JSON library is a list of entries, or {"entries": [...]}')
        return loaded
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"kind", "value", "category"} <= set(reader.fieldnames):
            raise InvalidInput("a CSV library needs at least the columns kind, value, category")
        return list(reader)
    raise InvalidInput("library files are .csv or .json")


def proposals_from_rows(rows: list[dict[str, Any]], *, default_source: str) -> list[Proposal]:
    proposals = []
    for number, row in enumerate(rows, start=1):
        try:
            severity = int(row.get("severity") or 5)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"entry {number}: severity is not a number") from exc
        proposal = Proposal(
            kind=str(row.get("kind") or "term"),
            value=str(row.get("value") or ""),
            category=str(row.get("category") or ""),
            severity=severity,
            source=str(row.get("source") or default_source),
            reason=str(row.get("admission_reason") or row.get("reason") or ""),
            rule=str(row.get("admission_rule") or row.get("rule") or ""),
            bank=str(row.get("bank") or DEFAULT_BANK),
        )
        try:
            proposals.append(validate_proposal(proposal))
        except InvalidInput as exc:
            raise InvalidInput(f"entry {number}: {exc.message}") from exc
    return proposals


def import_file(session: Session, data: bytes, fmt: str, *, actor: str, source: str) -> list[LibraryEntry]:
    """Imported entries are proposals like any other: they still need approval and publishing."""
    rows = parse_rows(data, fmt)
    if not rows:
        raise InvalidInput("the library file has no entries")
    return propose(session, proposals_from_rows(rows, default_source=source), actor=actor)


def export_rows(session: Session, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    query = select(LibraryEntry).order_by(LibraryEntry.admitted_at, LibraryEntry.id)
    if not include_inactive:
        query = query.where(LibraryEntry.status == "approved")
    rows = []
    for e in session.scalars(query):
        rows.append(
            {
                "id": e.id,
                "kind": e.kind,
                "value": e.value,
                "category": e.category,
                "severity": e.severity,
                "source": e.source,
                "status": e.status,
                "admitted_by": e.admitted_by,
                "admitted_at": e.admitted_at.isoformat(),
                "admission_reason": e.admission_reason,
                "admission_rule": e.admission_rule,
                "decided_by": e.decided_by or "",
                "decided_at": e.decided_at.isoformat() if e.decided_at else "",
                "added_in_version": e.added_in_version if e.added_in_version is not None else "",
                "retired_in_version": e.retired_in_version if e.retired_in_version is not None else "",
                "bank": e.bank if e.kind in ("sha256", "pdq") else "",
            }
        )
    return rows


def render_export(rows: list[dict[str, Any]], fmt: str, *, version: int) -> bytes:
    if fmt == "json":
        doc = {"format": "synthgate-feature-library/1", "version": version, "entries": rows}
        return json.dumps(doc, ensure_ascii=False, indent=1).encode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")
    raise InvalidInput("library files are .csv or .json")


# --- policies --------------------------------------------------------------------------------


def set_policy(
    session: Session, service: Service | None, document: dict[str, Any], *, actor: str
) -> ModerationPolicy:
    try:
        parsed = PolicyDocument.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(f"invalid moderation policy: {exc.errors()[0]['msg']}") from exc
    service_id = service.id if service else None
    latest = session.scalar(
        select(func.max(ModerationPolicy.version)).where(
            ModerationPolicy.service_id.is_(None)
            if service_id is None
            else ModerationPolicy.service_id == service_id
        )
    )
    row = ModerationPolicy(
        service_id=service_id,
        version=(latest or 0) + 1,
        document=parsed.model_dump(mode="json"),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "moderation.policy.set",
        actor=actor,
        service_id=service_id,
        subject_type="moderation_policy",
        subject_id=row.id,
        data={"version": row.version, "name": parsed.name, "rules": len(parsed.rules)},
    )
    return row


def policy_for(session: Session, service: Service | None) -> tuple[PolicyDocument, str]:
    """The service's newest policy, else the deployment's, else the built-in default.

    Returns the document and a version label (``service:<slug>@3``, ``deployment@2``, ``builtin``).
    """
    # One round trip: the service's newest policy sorts before the deployment's newest.
    scope = (
        or_(ModerationPolicy.service_id.is_(None), ModerationPolicy.service_id == service.id)
        if service is not None
        else ModerationPolicy.service_id.is_(None)
    )
    chosen = session.execute(
        select(ModerationPolicy.id, ModerationPolicy.version, ModerationPolicy.service_id)
        .where(scope)
        .order_by(case((ModerationPolicy.service_id.is_(None), 1), else_=0), ModerationPolicy.version.desc())
        .limit(1)
    ).first()
    own = chosen is not None and chosen[2] is not None
    if chosen is None:
        return DEFAULT_POLICY, "builtin"
    label = f"service:{service.slug}@{chosen[1]}" if own and service else f"deployment@{chosen[1]}"
    document = _POLICY_CACHE.get(chosen[0])
    if document is None:
        row = session.get(ModerationPolicy, chosen[0])
        assert row is not None
        if len(_POLICY_CACHE) > 1024:
            _POLICY_CACHE.clear()
        # Policy rows are never updated (a change is a new version), so caching by id is safe.
        document = _POLICY_CACHE[chosen[0]] = PolicyDocument.model_validate(row.document)
    return document, label


_POLICY_CACHE: dict[str, PolicyDocument] = {}
