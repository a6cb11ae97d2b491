"""Writes generation records and traces content found in the wild back to its generation.

Tracing is a registry of :class:`TraceMatcher` plug-ins (entry-point group ``synthgate.trace_matchers``),
each looking for one kind of evidence: the exact SHA-256 of the delivered content, a produce id
quoted in the text, the metadata label (GB 45438 implicit label, its ``ProduceID`` and signed
binding), the invisible watermark (payload decoded with a service's key) and the perceptual hash
(PDQ) of an image or video frames. Further matchers (C2PA manifests, …) plug in the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.db import utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound
from synthgate.media import MediaError, MediaItem
from synthgate.provenance import digests as content_digests
from synthgate.provenance import partitions
from synthgate.provenance.models import Generation, GenerationDigest
from synthgate.registry import Registry

if TYPE_CHECKING:
    from synthgate.config import Settings
    from synthgate.keys import KeyStore

# --- generation records ---------------------------------------------------------------------------


def record_generation(
    session: Session,
    *,
    produce_id: str,
    service_id: str,
    account_id: str,
    mode: str,
    medium: str = "text",
    operation: str = "generate",
    model: str | None = None,
    model_version: str | None = None,
    algorithm_id: str | None = None,
    streamed: bool = False,
    input_sha256: str,
    input_chars: int = 0,
    input_media: Sequence[dict[str, Any]] = (),
    output_text: str | None = None,
    delivered_media: Sequence[MediaItem] = (),
    labels: dict[str, Any] | None = None,
    verdicts: dict[str, Any] | None = None,
    delivered_unlabeled: bool = False,
    unlabeled_recipient: str | None = None,
    actor: str = "system",
) -> Generation:
    """Store the record of one delivered output (DSP-16) and index its digests for tracing.

    ``output_text`` and ``delivered_media`` are what the user received (labels included). Only
    digests are kept (GAI-11): SHA-256 of the text and of every file, PDQ of images and video
    frames, and the watermark payload that stands for this generation. When the output went out
    without the explicit label (LM-9), ``unlabeled_recipient`` names the (pseudonymous) account that
    received it and a ``provenance.delivered_unlabeled`` event is appended in the same transaction.
    """
    if output_text is None and not delivered_media:
        raise InvalidInput("a generation record needs the delivered text or files")
    if delivered_unlabeled and not unlabeled_recipient:
        raise InvalidInput("an unlabeled delivery must name its recipient (LM-9)", field="recipient")
    if output_text is not None:
        output_sha256 = hashlib.sha256(output_text.encode()).hexdigest()
    else:
        # Files only: the first file's digest, so a single delivered image is found by its plain
        # SHA-256; every file's digest is indexed below.
        output_sha256 = delivered_media[0].sha256
    generation = Generation(
        produce_id=produce_id,
        service_id=service_id,
        account_id=account_id,
        mode=mode,
        medium=delivered_media[0].medium if delivered_media and output_text is None else medium,
        operation=operation,
        model=model,
        model_version=model_version,
        algorithm_id=algorithm_id,
        streamed=streamed,
        input_sha256=input_sha256,
        output_sha256=output_sha256,
        input_chars=input_chars,
        output_chars=len(output_text or ""),
        input_media=list(input_media),
        labels=dict(labels or {}),
        verdicts=dict(verdicts or {}),
        delivered_unlabeled=delivered_unlabeled,
        unlabeled_recipient=unlabeled_recipient if delivered_unlabeled else None,
        created_at=utcnow(),
    )
    session.add(generation)
    if delivered_media:
        # A text's digest is the record's own indexed ``output_sha256``; files get index rows.
        session.flush()
    for kind, values in content_digests.media_digests(delivered_media, produce_id).items():
        add_digests(session, generation, kind, values)
    if delivered_unlabeled:
        audit.record(
            session,
            "provenance.delivered_unlabeled",
            actor=actor,
            service_id=service_id,
            subject_type="produce_id",
            subject_id=produce_id,
            data={"recipient": unlabeled_recipient, "clause": "LM-9"},
        )
    return generation


def explicitly_labeled(labels: dict[str, Any]) -> bool:
    """Whether a stage applied an explicit label (``explicit`` for text, ``explicit_*`` or
    ``media_label`` for files); without one the delivery is an LM-9 unlabeled delivery."""
    return any(key == "media_label" or key.split("_", 1)[0] == "explicit" for key in labels)


def model_version_for(session: Session, algorithm_id: str | None, model: str | None) -> str | None:
    """The filed model version (DSP-19 algorithm filing) that serves ``model``, when one is listed."""
    if algorithm_id is None or model is None:
        return None
    from synthgate.governance.models import AlgorithmVersion

    versions = session.scalars(
        select(AlgorithmVersion)
        .where(AlgorithmVersion.algorithm_id == algorithm_id)
        .order_by(AlgorithmVersion.created_at.desc())
    ).all()
    for version in versions:
        if model in (version.models or []):
            return version.version
    return None


def add_digests(session: Session, generation: Generation, kind: str, values: Iterable[str]) -> None:
    """Index further digests of delivered content (e.g. PDQ of an image, SHA-256 of a file)."""
    known = dict(generation.digests or {})
    listed = list(known.get(kind, []))
    for value in values:
        if value not in listed:
            listed.append(value)
            session.add(
                GenerationDigest(
                    generation_id=generation.id, kind=kind, value=value, created_at=generation.created_at
                )
            )
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


def mark_taken_down(session: Session, produce_id: str, *, case_id: str, actor: str) -> Generation:
    """DSP-10 disposal: mark a generation and its delivered files taken down by case ``case_id``.

    The record and its digests stay (they are the evidence and what blocks the content again);
    ``restore_taken_down`` undoes the mark when an appeal overturns the decision.
    """
    generation = get_generation(session, produce_id)
    if generation.taken_down_at is not None:
        raise Conflict(f"generation {produce_id} is already taken down (case {generation.taken_down_case})")
    generation.taken_down_at = utcnow()
    generation.taken_down_case = case_id
    audit.record(
        session,
        "provenance.taken_down",
        actor=actor,
        service_id=generation.service_id,
        subject_type="produce_id",
        subject_id=produce_id,
        data={"case": case_id, "digests": {k: len(v) for k, v in (generation.digests or {}).items()}},
    )
    return generation


def restore_taken_down(session: Session, produce_id: str, *, case_id: str, actor: str) -> Generation:
    """Lift a takedown (an appeal overturned it); only the case that took it down may restore it."""
    generation = get_generation(session, produce_id)
    if generation.taken_down_at is None:
        raise Conflict(f"generation {produce_id} is not taken down")
    if generation.taken_down_case != case_id:
        raise Conflict(f"generation {produce_id} was taken down by another case")
    generation.taken_down_at = None
    generation.taken_down_case = None
    audit.record(
        session,
        "provenance.restored",
        actor=actor,
        service_id=generation.service_id,
        subject_type="produce_id",
        subject_id=produce_id,
        data={"case": case_id},
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
        "operation": generation.operation,
        "algorithm_id": generation.algorithm_id,
        "input_sha256": generation.input_sha256,
        "output_sha256": generation.output_sha256,
        "digests": generation.digests,
        "labels": generation.labels,
        "verdicts": {
            k: v.get("action") if isinstance(v, dict) else v for k, v in generation.verdicts.items()
        },
        "delivered_unlabeled": generation.delivered_unlabeled,
        "taken_down": generation.taken_down_at is not None,
        "unlabeled_recipient": generation.unlabeled_recipient if show_account else None,
        "created_at": generation.created_at.isoformat(),
    }


def purge_generations(session: Session, *, before: dt.datetime, keep_accounts: set[str]) -> int:
    """Delete generation records older than ``before`` except those under a legal hold.

    On PostgreSQL a month whose records are all past ``before`` and none held is dropped whole
    (its ``generations`` and ``generation_digests`` partitions): no row-by-row delete, no dead
    tuples to vacuum. What remains (the current month's expired part, held months, SQLite) is
    deleted row by row. Generations delivered without the explicit label are LM-9 evidence; the
    caller's cut-off is the retention policy's, which never goes below six months.
    """
    conn = session.connection()
    dropped = 0
    if conn.dialect.name == "postgresql":
        digest_months = {p.start: p for p in partitions.month_partitions(conn, "generation_digests")}
        for month in partitions.month_partitions(conn, "generations"):
            if month.end > before:
                continue
            if keep_accounts and session.scalar(
                select(func.count())
                .select_from(Generation)
                .where(
                    Generation.created_at >= month.start,
                    Generation.created_at < month.end,
                    Generation.account_id.in_(keep_accounts),
                )
            ):
                continue  # a legal hold reaches into this month: row deletes below keep the held ones
            dropped += partitions.drop_partition(conn, month)
            if month.start in digest_months:
                partitions.drop_partition(conn, digest_months[month.start])
    stmt = select(Generation.id).where(Generation.created_at < before)
    if keep_accounts:
        stmt = stmt.where(Generation.account_id.not_in(keep_accounts))
    ids = list(session.scalars(stmt))
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        session.execute(delete(GenerationDigest).where(GenerationDigest.generation_id.in_(part)))
        session.execute(delete(Generation).where(Generation.id.in_(part)))
    return dropped + len(ids)


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
    keys: KeyStore | None = None
    """The key store: the watermark and signed-label matchers need the service keys."""
    settings: Settings | None = None
    """Where the C2PA trust anchors are; without them a manifest is at best ``Valid``."""

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


def _media(item: TraceInput) -> MediaItem | None:
    try:
        return MediaItem.from_bytes(item.data)
    except MediaError:
        return None


@trace_matchers.register("metadata_label")
class MetadataLabelMatcher:
    """The GB 45438 implicit label (TC260 ``AIGC`` metadata) still in the file: its ``ProduceID``.

    Anyone can write a label, so its strength depends on the signed binding in ``ReservedCode1``:
    signed by us over this very content (1.0), signed by us but the content changed since (0.9),
    unsigned or not verifiable (0.6).
    """

    name = "metadata_label"
    _STRENGTH = {"bound": 1.0, "content_changed": 0.9}

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        from synthgate.labeling.inspect import inspect

        verifier = item.keys.labeling_signing_key.public_key() if item.keys is not None else None
        try:
            report = inspect(item.data, verifier=verifier)
        except (MediaError, InvalidInput):
            return []  # not a container the labels live in (plain text, unknown bytes)
        status = str(report.binding.get("status", "unsigned"))
        found: list[Evidence] = []
        for label in report.labels:
            if label.label is None or not label.label.ProduceID:
                continue
            produce_id = label.label.ProduceID
            if session.scalar(select(Generation.id).where(Generation.produce_id == produce_id)) is None:
                continue
            strength = self._STRENGTH.get(status, 0.6)
            found.append(
                Evidence(
                    self.name, produce_id, strength, f"metadata label in {label.where}, binding {status}"
                )
            )
        return found


@trace_matchers.register("c2pa")
class C2paMatcher:
    """A C2PA manifest whose ``cn.tc260.aigc`` assertion carries the produce id.

    The manifest's hard binding breaks when the content changes, and its signature names the
    signer: chained to our configured trust anchor and intact (1.0), intact but signed by another
    certificate (0.8: anyone can sign a manifest quoting an id), present but invalid (0.6).
    """

    name = "c2pa"
    _STRENGTH = {"Trusted": 1.0, "Valid": 0.8}

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        media = _media(item)
        if media is None:
            return []
        from synthgate.labeling import c2pa

        anchors = None
        if item.settings is not None:
            from synthgate.labeling.service import c2pa_paths

            path = c2pa_paths(item.settings)[2]
            anchors = path.read_bytes() if path.is_file() else None
        try:
            report = c2pa.read(media.data, media.container, anchors)
        except InvalidInput:
            return []  # the C2PA library is not installed
        produce_id = str((report.aigc or {}).get("ProduceID", ""))
        if not report.present or not produce_id:
            return []
        if session.scalar(select(Generation.id).where(Generation.produce_id == produce_id)) is None:
            return []
        state = report.state or "Invalid"
        return [
            Evidence(
                self.name,
                produce_id,
                self._STRENGTH.get(state, 0.6),
                f"C2PA manifest ({state}, signer {report.signer}) carries this produce id",
            )
        ]


@trace_matchers.register("watermark")
class WatermarkMatcher:
    """The invisible watermark: decoded with each service's key, its payload names the generation.

    A payload only decodes with the key that embedded it (BCH-checked, p ≤ 1e-6 per try), so a
    match survives stripped metadata, re-encoding, resizing and crops.
    """

    name = "watermark"

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        media = _media(item)
        if item.keys is None or media is None or media.medium != "image":
            return []
        from synthgate.governance.models import Service
        from synthgate.labeling.watermark import detect_image_bytes

        found: list[Evidence] = []
        for service_id in session.scalars(select(Service.id)):
            try:
                detection = detect_image_bytes(media.data, item.keys.watermark_key(service_id))
            except InvalidInput:
                return []
            if not detection.detected or detection.payload is None:
                continue
            rows = session.execute(
                select(Generation.produce_id)
                .join(GenerationDigest, GenerationDigest.generation_id == Generation.id)
                .where(
                    GenerationDigest.kind == "watermark",
                    GenerationDigest.value == detection.payload,
                    Generation.service_id == service_id,
                )
            ).all()
            found += [
                Evidence(
                    self.name,
                    pid,
                    0.95,
                    f"watermark of the service decoded (p = {detection.p_value:.1e}); payload "
                    f"{detection.payload} names this generation",
                )
                for (pid,) in rows
            ]
        return found


@trace_matchers.register("pdq")
class PdqMatcher:
    """The perceptual hash (PDQ) of an image or of video frames, near a delivered one.

    Survives stripped metadata, recompression and resizing; strength falls with the Hamming
    distance (0.85 for identical pixels' hashes, 0.5 at the match threshold of 31 bits).
    """

    name = "pdq"
    CHUNK = 50_000

    def match(self, session: Session, item: TraceInput) -> list[Evidence]:
        media = _media(item)
        if media is None:
            return []
        query = content_digests.pdqs_of(media)
        if not query:
            return []
        best: dict[str, int] = {}
        # A linear scan in chunks: a trace is a rare, operator-initiated act; the vectorised
        # comparison costs about a second per million stored hashes.
        stmt = (
            select(Generation.produce_id, GenerationDigest.value)
            .join(Generation, GenerationDigest.generation_id == Generation.id)
            .where(GenerationDigest.kind == "pdq")
            .execution_options(yield_per=self.CHUNK)
        )
        for chunk in session.execute(stmt).partitions(self.CHUNK):
            values = [value for _, value in chunk]
            for position, distance in content_digests.hamming_matches(query, values):
                pid = chunk[position][0]
                best[pid] = min(distance, best.get(pid, distance))
        limit = content_digests.PDQ_MATCH_DISTANCE
        return [
            Evidence(
                self.name,
                pid,
                round(0.85 - 0.35 * distance / limit, 3),
                f"PDQ perceptual hash within {distance} of 256 bits of a delivered "
                + ("image" if media.medium == "image" else "video frame"),
            )
            for pid, distance in best.items()
        ]


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


# --- figures (read only; for the transparency report) ----------------------------------------------


def generation_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Generations in [start, end): the total, per medium, per operation and per UTC day."""
    from sqlalchemy import Date, cast, func

    window = (Generation.created_at >= start, Generation.created_at < end)
    by_medium = dict(
        session.execute(
            select(Generation.medium, func.count()).where(*window).group_by(Generation.medium)
        ).all()
    )
    by_operation = dict(
        session.execute(
            select(Generation.operation, func.count()).where(*window).group_by(Generation.operation)
        ).all()
    )
    if session.get_bind().dialect.name == "postgresql":
        day: Any = cast(func.timezone("UTC", Generation.created_at), Date)
    else:  # SQLite keeps UTC text, whose first ten characters are the day
        day = func.date(Generation.created_at)
    rows = session.execute(select(day, func.count()).where(*window).group_by(day).order_by(day)).all()
    by_day = {str(d): int(n) for d, n in rows}
    return {
        "total": int(sum(by_medium.values())),
        "by_medium": {str(k): int(v) for k, v in by_medium.items()},
        "by_operation": {str(k): int(v) for k, v in by_operation.items()},
        "by_day": by_day,
    }
