"""Writes generation records and traces content found in the wild back to its generation.

Tracing is a registry of :class:`TraceMatcher` plug-ins (entry-point group ``synthgate.trace_matchers``),
each looking for one kind of evidence: today the exact SHA-256 of the delivered content and a
produce id quoted in the text; metadata labels (GB 45438 implicit labels), C2PA manifests,
watermarks and perceptual hashes (PDQ) plug in as further matchers without touching this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.errors import InvalidInput, NotFound
from synthgate.provenance.models import Generation, GenerationDigest
from synthgate.registry import Registry

# --- generation records ---------------------------------------------------------------------------


def record_generation(session: Session, generation: Generation, *, extra_sha256: Iterable[str] = ()) -> None:
    """Store a generation and index every digest of what was delivered, for tracing."""
    session.add(generation)
    session.flush()
    add_digests(session, generation, "sha256", [generation.output_sha256, *extra_sha256])


def add_digests(session: Session, generation: Generation, kind: str, values: Iterable[str]) -> None:
    """Index further digests of delivered content (e.g. PDQ of an image, SHA-256 of a file)."""
    known = dict(generation.digests or {})
    listed = list(known.get(kind, []))
    for value in values:
        if value not in listed:
            listed.append(value)
            session.add(GenerationDigest(generation_id=generation.id, kind=kind, value=value))
    known[kind] = listed
    generation.digests = known


def get_generation(session: Session, produce_id: str) -> Generation:
    found = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
    if found is None:
        raise NotFound(f"no generation with produce id {produce_id!r}")
    return found


def mark_delivered_unlabeled(session: Session, produce_id: str, *, recipient: str, actor: str) -> Generation:
    """LM-9: the content went out without the explicit label at the user's request; log who got it.

    ``recipient`` is a pseudonymous account id. The record and its audit event are kept for at
    least the log retention minimum (six months).
    """
    if not recipient or len(recipient) > 100:
        raise InvalidInput("recipient must be an account id", field="recipient")
    generation = get_generation(session, produce_id)
    generation.delivered_unlabeled = True
    generation.unlabeled_recipient = recipient
    audit.record(
        session,
        "provenance.delivered_unlabeled",
        actor=actor,
        service_id=generation.service_id,
        subject_type="produce_id",
        subject_id=produce_id,
        data={"recipient": recipient, "clause": "LM-9"},
    )
    return generation


def generation_summary(generation: Generation, *, show_account: bool) -> dict[str, Any]:
    return {
        "produce_id": generation.produce_id,
        "service_id": generation.service_id,
        "account_id": generation.account_id if show_account else None,
        "mode": generation.mode,
        "medium": generation.medium,
        "model": generation.model,
        "model_version": generation.model_version,
        "algorithm_id": generation.algorithm_id,
        "input_sha256": generation.input_sha256,
        "output_sha256": generation.output_sha256,
        "digests": generation.digests,
        "labels": generation.labels,
        "verdicts": {
            k: v.get("action") if isinstance(v, dict) else v for k, v in generation.verdicts.items()
        },
        "delivered_unlabeled": generation.delivered_unlabeled,
        "unlabeled_recipient": generation.unlabeled_recipient if show_account else None,
        "created_at": generation.created_at.isoformat(),
    }


def purge_generations(session: Session, *, before: dt.datetime, keep_accounts: set[str]) -> int:
    """Delete generation records older than ``before`` except those under a legal hold.

    Generations delivered without the explicit label are LM-9 evidence; the caller's cut-off is
    the retention policy's, which never goes below six months.
    """
    stmt = select(Generation.id).where(Generation.created_at < before)
    if keep_accounts:
        stmt = stmt.where(Generation.account_id.not_in(keep_accounts))
    ids = list(session.scalars(stmt))
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        session.execute(delete(GenerationDigest).where(GenerationDigest.generation_id.in_(part)))
        session.execute(delete(Generation).where(Generation.id.in_(part)))
    return len(ids)


# --- tracing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """One reason to believe ``produce_id`` made the content."""

    matcher: str
    produce_id: str
    strength: float
    """1.0 for an exact match, lower for perceptual or partial ones."""
    detail: str


@dataclass
class TraceInput:
    data: bytes
    filename: str | None = None
    text: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.text is None:
            try:
                self.text = self.data.decode("utf-8")
            except UnicodeDecodeError:
                self.text = None


class TraceMatcher(Protocol):
    name: str

    def match(self, session: Session, item: TraceInput) -> list[Evidence]: ...


trace_matchers: Registry[TraceMatcher] = Registry("trace_matchers")


@trace_matchers.register("sha256")
class Sha256Matcher:
    """The exact bytes that were delivered (a copied text, an untouched file)."""

    name = "sha256"

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        digest = hashlib.sha256(item.data).hexdigest()
        candidates = {digest}
        if item.text is not None and item.text != item.text.strip():
            # Editors and copy-paste add or drop a final newline; that is not a different text.
            candidates.add(hashlib.sha256(item.text.strip().encode()).hexdigest())
        rows = session.execute(
            select(Generation.produce_id)
            .join(GenerationDigest, GenerationDigest.generation_id == Generation.id)
            .where(GenerationDigest.kind == "sha256", GenerationDigest.value.in_(candidates))
        ).all()
        found = {r[0] for r in rows}
        found.update(
            session.scalars(select(Generation.produce_id).where(Generation.output_sha256.in_(candidates)))
        )
        return [
            Evidence(self.name, pid, 1.0, "SHA-256 of the content equals the delivered output")
            for pid in found
        ]


# A produce id is a ULID: 26 Crockford base-32 characters (GB 45438 Annex E character set).
_PRODUCE_ID = re.compile(r"(?<![0-9A-Z])[0-9A-HJKMNP-TV-Z]{26}(?![0-9A-Z])")


@trace_matchers.register("produce_id")
class ProduceIdMatcher:
    """A produce id quoted in the text (e.g. from an implicit label copied along with it)."""

    name = "produce_id"

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        if item.text is None:
            return []
        quoted = set(_PRODUCE_ID.findall(item.text)[:50])
        if not quoted:
            return []
        found = session.scalars(select(Generation.produce_id).where(Generation.produce_id.in_(quoted)))
        return [Evidence(self.name, pid, 0.9, "the content quotes this produce id") for pid in found]


@dataclass
class TraceResult:
    matches: list[dict[str, Any]]
    sha256: str
    matchers: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "matchers": self.matchers, "matches": self.matches}


def trace(
    session: Session, item: TraceInput, *, actor: str, show_account: bool, matchers: list[str] | None = None
) -> TraceResult:
    """Find the generations behind ``item``, strongest evidence first; the trace itself is audited."""
    names = matchers if matchers is not None else trace_matchers.names()
    evidence: list[Evidence] = []
    for name in names:
        evidence.extend(trace_matchers.create(name).match(session, item))
    by_produce: dict[str, list[Evidence]] = {}
    for ev in evidence:
        by_produce.setdefault(ev.produce_id, []).append(ev)
    matches: list[dict[str, Any]] = []
    for produce_id, found in by_produce.items():
        generation = get_generation(session, produce_id)
        matches.append(
            {
                "strength": max(e.strength for e in found),
                "evidence": [
                    {"matcher": e.matcher, "strength": e.strength, "detail": e.detail} for e in found
                ],
                "generation": generation_summary(generation, show_account=show_account),
            }
        )
    matches.sort(key=lambda m: -float(m["strength"]))
    digest = hashlib.sha256(item.data).hexdigest()
    audit.record(
        session,
        "provenance.traced",
        actor=actor,
        subject_type="content_sha256",
        subject_id=digest,
        data={
            "matchers": names,
            "matched": [m["generation"]["produce_id"] for m in matches],
            "account_shown": show_account,
        },
    )
    return TraceResult(matches=matches, sha256=digest, matchers=names)
