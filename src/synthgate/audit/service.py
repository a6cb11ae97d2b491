"""Writes the audit tables: append events, integrate them into the Merkle tree, sign checkpoints, verify.

``record`` is called by every domain's service inside its own transaction, so the event commits
or rolls back with the change it describes. ``integrate`` (the sequencer) runs in its own short
transaction, in the background and before checkpoints and verification.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, Text, bindparam, cast, func, insert, select, text, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from synthgate.audit.checkpoint import Checkpoint, CheckpointError, NoteSigner, NoteVerifier
from synthgate.audit.merkle import CompactRange, leaf_hash, root_from_leaf_hashes
from synthgate.audit.models import (
    AuditArchivedLeaf,
    AuditCheckpoint,
    AuditEvent,
    AuditSubjectKey,
    AuditTree,
    LegalHold,
)
from synthgate.audit.proofs import TreeLevels
from synthgate.db import utcnow
from synthgate.errors import InvalidInput, NotFound
from synthgate.provenance import partitions

if TYPE_CHECKING:
    from synthgate.keys import KeyStore

INTEGRATE_BATCH = 5000
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]  # a declarative table is a Table


def record(
    session: Session,
    event_type: str,
    *,
    actor: str,
    service_id: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
    personal_subject: str | None = None,
    keys: KeyStore | None = None,
) -> AuditEvent:
    """Append an event to the current transaction. Never put raw personal data in ``data``.

    Personal data that must be kept with the event goes in ``personal``: it is sealed under the
    key of ``personal_subject`` (a pseudonymous reference such as ``account:<id>``) and only the
    ciphertext enters the leaf, so :func:`shred_subject` can erase it later (GAI-11).
    """
    payload = dict(data or {})
    if personal:
        if not personal_subject or keys is None:
            raise ValueError("sealing personal data needs personal_subject and the key store")
        payload[SEALED_FIELD] = seal(session, keys, personal_subject, personal)
    event = AuditEvent(
        event_type=event_type,
        actor=actor,
        service_id=service_id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload,
        created_at=utcnow(),
    )
    session.add(event)
    return event


def record_many(session: Session, events: list[dict[str, Any]]) -> int:
    """Append many events to the current transaction in one multi-row INSERT (the batched path).

    Each dict has ``event_type`` and ``actor`` and optionally ``service_id``, ``subject_type``,
    ``subject_id`` and ``data``; the same rules as :func:`record` apply (no raw personal data).
    Returns how many were appended. No ORM objects are built, which is what makes it cheap.
    """
    now = utcnow()
    allowed = {"event_type", "actor", "service_id", "subject_type", "subject_id", "data"}
    rows: list[dict[str, Any]] = []
    for event in events:
        unknown = set(event) - allowed
        if unknown or "event_type" not in event or "actor" not in event:
            raise ValueError(f"an audit event needs event_type and actor, not {sorted(unknown)}")
        rows.append(
            {
                "service_id": None,
                "subject_type": None,
                "subject_id": None,
                **event,
                "data": dict(event.get("data") or {}),
                "created_at": now,
            }
        )
    if not rows:
        return 0
    conn = session.connection()
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        # COPY streams the batch in one round trip with no per-row parameter processing; it
        # runs inside the session's transaction like any other statement.
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
            for row in rows:
                copy.write_row(
                    (
                        row["created_at"],
                        row["event_type"],
                        row["actor"],
                        row["service_id"],
                        row["subject_type"],
                        row["subject_id"],
                        canonical_text(row["data"]),
                    )
                )
    else:
        session.execute(insert(_EVENTS), rows)
    return len(rows)


COPY_MIN_ROWS = 20
_COPY_EVENTS = (
    "COPY audit_events (created_at, event_type, actor, service_id, subject_type, subject_id, data) FROM STDIN"
)


def canonical_entry(
    *,
    id: int,
    created_at: dt.datetime,
    event_type: str,
    actor: str,
    service_id: str | None,
    subject_type: str | None,
    subject_id: str | None,
    data: Any,
) -> dict[str, Any]:
    """The log entry as a JSON object; its canonical serialisation is what the leaf commits to."""
    return {
        "id": id,
        "created_at": created_at.astimezone(dt.UTC).isoformat(),
        "type": event_type,
        "actor": actor,
        "service": service_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "data": data,
    }


# One encoder built once: ``json.dumps`` with options builds a new encoder on every call, which
# was a measurable share of the sequencer's time per leaf. Same output as json.dumps(**options).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_json_string = json.encoder.encode_basestring  # what the encoder above uses for str values


def canonical_json(value: Any) -> bytes:
    """One spelling per value: sorted keys, no spaces, UTF-8. Used for leaves and bundle lines."""
    return _CANONICAL.encode(value).encode()


def canonical_text(value: Any) -> str:
    """:func:`canonical_json` as text: also the engine's JSON serializer, so stored JSON columns
    hold the canonical spelling and verification can hash the stored text without re-encoding it."""
    return _CANONICAL.encode(value)


def _nullable(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def entry_bytes_from_text(
    *,
    id: int,
    created_at: str,
    event_type: str,
    actor: str,
    service_id: str | None,
    subject_type: str | None,
    subject_id: str | None,
    data_text: str,
) -> bytes:
    """:func:`canonical_event_bytes` assembled from stored text without parsing the data column.

    Equal to the canonical bytes exactly when ``data_text`` is the canonical spelling of the data
    (the engine writes it so); keys in sorted order. Callers that get a different leaf hash than
    the stored one fall back to parsing, so a non-canonical but equal spelling is never blamed.
    """
    return (
        f'{{"actor":{_json_string(actor)},"created_at":"{created_at}","data":{data_text},"id":{id},'
        f'"service":{_nullable(service_id)},"subject_id":{_nullable(subject_id)},'
        f'"subject_type":{_nullable(subject_type)},"type":{_json_string(event_type)}}}'
    ).encode()


def canonical_event_bytes(event: AuditEvent) -> bytes:
    """The exact bytes hashed into the leaf: every stored field, canonical JSON."""
    return canonical_json(
        canonical_entry(
            id=event.id,
            created_at=event.created_at,
            event_type=event.event_type,
            actor=event.actor,
            service_id=event.service_id,
            subject_type=event.subject_type,
            subject_id=event.subject_id,
            data=event.data,
        )
    )


# --- crypto-shredding (GAI-11) -------------------------------------------------------------------

SEALED_FIELD = "sealed"
_WRAP_PURPOSE = "audit-subject-key-wrap"


def _wrapper(keys: KeyStore) -> AESGCM:
    return AESGCM(keys.derive(_WRAP_PURPOSE))


def _subject_key(session: Session, keys: KeyStore, subject: str, *, create: bool) -> bytes | None:
    row = session.get(AuditSubjectKey, subject)
    if row is None:
        if not create:
            return None
        key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + _wrapper(keys).encrypt(nonce, key, subject.encode())
        session.add(AuditSubjectKey(subject=subject, wrapped_key=base64.b64encode(wrapped).decode()))
        session.flush()
        return key
    if row.wrapped_key is None:
        if create:
            raise InvalidInput(f"the data of {subject} was erased; no new personal data may be sealed for it")
        return None
    raw = base64.b64decode(row.wrapped_key)
    return _wrapper(keys).decrypt(raw[:12], raw[12:], subject.encode())


def seal(session: Session, keys: KeyStore, subject: str, personal: dict[str, Any]) -> dict[str, str]:
    """Encrypt ``personal`` under the subject's own key; the subject reference is bound as AAD."""
    key = _subject_key(session, keys, subject, create=True)
    assert key is not None
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, canonical_json(personal), subject.encode())
    return {"subject": subject, "ct": base64.b64encode(nonce + sealed).decode()}


def unseal(session: Session, keys: KeyStore, event: AuditEvent) -> dict[str, Any] | None:
    """The personal data sealed in ``event``, or None when there is none or its key was shredded."""
    sealed = (event.data or {}).get(SEALED_FIELD)
    if not isinstance(sealed, dict):
        return None
    subject = str(sealed.get("subject", ""))
    key = _subject_key(session, keys, subject, create=False)
    if key is None:
        return None
    raw = base64.b64decode(str(sealed.get("ct", "")))
    try:
        value: dict[str, Any] = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], subject.encode()))
    except InvalidTag:
        return None
    return value


def shred_subject(session: Session, subject: str, *, actor: str) -> bool:
    """Erase a subject's sealed personal data everywhere by destroying its key (GAI-11).

    No event changes: the ciphertext stays in the leaves, so the tree and every checkpoint still
    verify, but nothing can decrypt it any more. Returns whether a key existed.
    """
    row = session.get(AuditSubjectKey, subject, with_for_update=True)
    if row is None or row.wrapped_key is None:
        return False
    row.wrapped_key = None
    row.shredded_at = utcnow()
    record(session, "audit.subject_shredded", actor=actor, subject_type="data_subject", subject_id=subject)
    return True


def _tree(session: Session, *, lock: bool) -> AuditTree:
    if lock:
        # An UPDATE takes the write lock on SQLite and a row lock on PostgreSQL before we read,
        # so two sequencers in different workers never hand out the same leaf index.
        session.execute(update(AuditTree).where(AuditTree.id == 1).values(updated_at=utcnow()))
    tree = session.get(AuditTree, 1, populate_existing=True)
    if tree is None:
        try:
            with session.begin_nested():
                session.add(AuditTree(id=1, size=0, frontier=[], root=root_from_leaf_hashes([]).hex()))
        except IntegrityError:
            pass  # another sequencer created it at the same moment; use theirs
        if lock:
            session.execute(update(AuditTree).where(AuditTree.id == 1).values(updated_at=utcnow()))
        tree = session.get(AuditTree, 1, populate_existing=True)
        assert tree is not None
    return tree


@dataclass
class _Plan:
    """A batch of pending events hashed into the tree, computed outside any write lock."""

    base_size: int
    ids: list[int]
    hexes: list[str]
    created_range: tuple[dt.datetime, dt.datetime]
    """Oldest and newest ``created_at`` of the batch: bounds the UPDATE to the months that hold it,
    so PostgreSQL prunes the other partitions instead of probing each one's index per row."""
    size: int
    frontier: list[str]
    root: str


def _plan(session: Session, batch: int) -> _Plan | None:
    """Read the tree head and the oldest pending events and hash them: reads only, no locks."""
    tree = session.get(AuditTree, 1, populate_existing=True)
    if tree is None:
        tree = _tree(session, lock=True)  # first ever run: create the empty tree row
        session.commit()
    t = AuditEvent.__table__.c
    pending = (
        session.connection()
        .execute(
            select(
                t.id,
                t.created_at,
                t.event_type,
                t.actor,
                t.service_id,
                t.subject_type,
                t.subject_id,
                cast(t.data, Text),
            )
            .where(t.leaf_index.is_(None))
            .order_by(t.id)
            .limit(batch)
        )
        .all()
    )
    if not pending:
        return None
    frontier = CompactRange.from_state(tree.size, [bytes.fromhex(h) for h in tree.frontier])
    base = frontier.size
    encode, loads = _CANONICAL.encode, json.loads
    digests = [
        leaf_hash(
            entry_bytes_from_text(
                id=id_,
                created_at=created.astimezone(dt.UTC).isoformat(),
                event_type=etype,
                actor=actor,
                service_id=service,
                subject_type=stype,
                subject_id=sid,
                data_text=encode(loads(data)),
            )
        )
        for id_, created, etype, actor, service, stype, sid, data in pending
    ]
    frontier.extend(digests)
    return _Plan(
        base_size=base,
        ids=[row[0] for row in pending],
        hexes=[d.hex() for d in digests],
        created_range=(min(row[1] for row in pending), max(row[1] for row in pending)),
        size=frontier.size,
        frontier=[h.hex() for h in frontier.state()],
        root=frontier.root().hex(),
    )


def _apply(session: Session, plan: _Plan) -> bool:
    """Write a plan if the tree is still where it was planned from; False when another sequencer
    got there first (then nothing is written and the caller plans again)."""
    conn = session.connection()
    # The conditional UPDATE takes the write lock (SQLite) or the row lock (PostgreSQL, which
    # re-checks the condition after waiting), so two sequencers never hand out the same index.
    moved = conn.execute(
        update(AuditTree)
        .where(AuditTree.id == 1, AuditTree.size == plan.base_size)
        .values(size=plan.size, frontier=plan.frontier, root=plan.root, updated_at=utcnow())
    )
    if moved.rowcount != 1:
        return False
    first = plan.base_size
    if conn.dialect.name == "postgresql":
        written = conn.execute(
            text(
                "UPDATE audit_events AS e SET leaf_index = v.leaf_index, leaf_hash = v.leaf_hash "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:idx AS bigint[]), CAST(:hashes AS text[])) "
                "AS v(id, leaf_index, leaf_hash) WHERE e.id = v.id AND e.leaf_index IS NULL "
                "AND e.created_at BETWEEN :lo AND :hi"
            ),
            {
                "ids": plan.ids,
                "idx": list(range(first, first + len(plan.ids))),
                "hashes": plan.hexes,
                "lo": plan.created_range[0],
                "hi": plan.created_range[1],
            },
        )
    else:
        written = conn.exec_driver_sql(
            "UPDATE audit_events SET leaf_index = ?, leaf_hash = ? WHERE id = ? AND leaf_index IS NULL",
            [(first + i, h, id_) for i, (id_, h) in enumerate(zip(plan.ids, plan.hexes, strict=True))],
        )
    if written.rowcount != len(plan.ids):
        # Cannot happen while the size check holds; if it did, the tree would name a leaf that is
        # not stored, so the whole transaction is abandoned instead.
        raise RuntimeError(f"integrated {written.rowcount} of {len(plan.ids)} planned leaves")
    return True


def integrate(session: Session, batch: int = INTEGRATE_BATCH) -> int:
    """Give pending events contiguous leaf indexes and extend the tree, in ``session``'s
    transaction. Returns how many. (The background job uses :func:`integrate_all`.)"""
    _tree(session, lock=True)
    plan = _plan(session, batch)
    if plan is None:
        return 0
    applied = _apply(session, plan)
    assert applied, "the tree moved while its lock was held"
    return len(plan.ids)


def integrate_all(db_session_factory: Any, batch: int = INTEGRATE_BATCH) -> int:
    """Integrate everything pending, one committed batch at a time.

    This runs in the background beside the requests that write the events, on the same cores, so
    its cost per leaf is kept small (plain DBAPI rows, no ORM objects; the tree extended in one
    chunked pass; the indexes written back in one statement or one ``executemany``) and, above all,
    the write lock is held only for the writes: the batch is read and hashed first, without locks
    (on SQLite a request that meets the lock sleeps in the busy handler, which is what showed in
    the gateway's c=1 tail), then written in a short transaction that checks the tree did not move.
    The leaf is hashed from the parsed data re-encoded canonically: the stored text is not trusted.
    """
    total = 0
    while True:
        with db_session_factory() as session:
            plan = _plan(session, batch)
            session.rollback()  # end the read snapshot before writing (SQLite cannot upgrade it)
        if plan is None:
            return total
        with db_session_factory() as session:
            applied = _apply(session, plan)
            session.commit()
        if not applied:
            continue  # another sequencer integrated first: plan again from the new head
        total += len(plan.ids)
        if len(plan.ids) < batch:
            return total


def sign_checkpoint(session: Session, signer: NoteSigner, origin: str) -> AuditCheckpoint | None:
    """Sign the current tree head if it grew since the last checkpoint."""
    tree = _tree(session, lock=True)
    last = session.scalar(select(func.max(AuditCheckpoint.size)))
    if last is not None and last >= tree.size:
        return None
    note = signer.sign(Checkpoint(origin=origin, size=tree.size, root=bytes.fromhex(tree.root)))
    checkpoint = AuditCheckpoint(size=tree.size, root=tree.root, note=note, created_at=utcnow())
    session.add(checkpoint)
    return checkpoint


@dataclass
class VerifyReport:
    ok: bool
    size: int
    checked: int
    checkpoints: int
    pending: int
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)
    first_bad_checkpoint: int | None = None
    """Tree size of the first checkpoint whose note, signature or stored copy is wrong."""
    purged: int = 0
    range: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "checked": self.checked,
            "checkpoints": self.checkpoints,
            "pending": self.pending,
            "first_bad_index": self.first_bad_index,
            "first_bad_checkpoint": self.first_bad_checkpoint,
            "purged": self.purged,
            "range": list(self.range) if self.range else None,
            "problems": self.problems,
            "notes": self.notes,
        }


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.first_bad: int | None = None
        self.first_bad_checkpoint: int | None = None

    def bad(self, index: int, message: str) -> None:
        self.messages.append(message)
        if self.first_bad is None or index < self.first_bad:
            self.first_bad = index

    def bad_checkpoint(self, size: int, message: str) -> None:
        self.bad(size, message)
        if self.first_bad_checkpoint is None or size < self.first_bad_checkpoint:
            self.first_bad_checkpoint = size


@dataclass
class _Row:
    leaf_index: int
    leaf_hash: str | None
    recomputed: bytes | None
    """The leaf hash recomputed from the stored columns; None when a column is unreadable."""
    error: str | None
    purged: bool
    event_type: str
    raw_data: Any

    def data(self) -> Any:
        return json.loads(self.raw_data) if isinstance(self.raw_data, str | bytes) else self.raw_data


def _parse_time(value: Any) -> dt.datetime:
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _stored_rows(session: Session, start: int = 0, end: int | None = None) -> Iterator[_Row]:
    """Every stored leaf in index order: the integrated events, with the archived leaves of dropped
    months merged in (as purged rows: a hash and no payload)."""
    archived = iter(_archived_rows(session, start, end))
    pending_archived = next(archived, None)
    for row in _event_rows(session, start, end):
        if isinstance(row.leaf_index, int):
            while pending_archived is not None and pending_archived.leaf_index <= row.leaf_index:
                yield pending_archived
                pending_archived = next(archived, None)
        yield row
    while pending_archived is not None:
        yield pending_archived
        pending_archived = next(archived, None)


def _archived_rows(session: Session, start: int, end: int | None) -> Iterator[_Row]:
    t = AuditArchivedLeaf
    stmt = (
        select(t.leaf_index, t.leaf_hash, t.event_type)
        .where(t.leaf_index >= start)
        .order_by(t.leaf_index)
        .execution_options(yield_per=20000)
    )
    if end is not None:
        stmt = stmt.where(t.leaf_index < end)
    for index, digest, event_type in session.connection().execute(stmt):
        yield _Row(index, digest, None, None, True, event_type, None)


def _event_rows(session: Session, start: int = 0, end: int | None = None) -> Iterator[_Row]:
    """Integrated events as stored, read column by column so a corrupted value is reported, not raised.

    The time and JSON columns are read without SQLAlchemy's result processing (a byte flipped in
    a SQLite text value would otherwise make the whole query fail); PostgreSQL still hands back
    typed values, which ``_parse_time`` and the ``str`` check accept as well.
    """
    t = AuditEvent
    conn = session.connection()
    # PostgreSQL spells the time the way the leaf does (isoformat, UTC, microseconds) in C, which
    # saves a datetime round trip per row; SQLite hands back its stored text.
    created_col: Any = (
        func.to_char(func.timezone("UTC", t.created_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        if conn.dialect.name == "postgresql"
        else type_coerce(t.created_at, Text)
    )
    stmt = (
        select(
            t.leaf_index,
            t.leaf_hash,
            t.id,
            created_col,
            t.event_type,
            t.actor,
            t.service_id,
            t.subject_type,
            t.subject_id,
            cast(t.data, Text),  # the stored text itself (PostgreSQL's json keeps it verbatim)
            t.purged_at,
        )
        .where(t.leaf_index.is_not(None), t.leaf_index >= start)
        .order_by(t.leaf_index)
        .execution_options(yield_per=20000)
    )
    if end is not None:
        stmt = stmt.where(t.leaf_index < end)
    enc = _json_string
    for index, digest, id_, created, etype, actor, service, stype, sid, raw, purged in conn.execute(stmt):
        recomputed: bytes | None = None
        error = None
        try:
            if type(created) is str and len(created) == 26 and created[10] == " ":
                # SQLite's spelling of a UTC time with microseconds; any other spelling (or a
                # time whose isoformat drops zero microseconds) simply misses the fast path.
                created_iso = f"{created[:10]}T{created[11:]}+00:00"
            elif type(created) is str and len(created) == 32 and created.endswith("+00:00"):
                created_iso = created  # already the leaf's spelling (PostgreSQL's to_char above)
            else:
                created_iso = _parse_time(created).astimezone(dt.UTC).isoformat()
            if type(raw) is str and type(id_) is int:
                # Fast path: hash the stored text as it is; it matches when it is canonical. A
                # column of the wrong type raises TypeError in enc() and takes the slow path.
                recomputed = leaf_hash(
                    f'{{"actor":{enc(actor)},"created_at":"{created_iso}","data":{raw},"id":{id_},'
                    f'"service":{"null" if service is None else enc(service)},'
                    f'"subject_id":{"null" if sid is None else enc(sid)},'
                    f'"subject_type":{"null" if stype is None else enc(stype)},"type":{enc(etype)}}}'.encode()
                )
        except (ValueError, TypeError):
            recomputed = None
        try:
            if recomputed is None or recomputed.hex() != digest:
                data = json.loads(raw) if isinstance(raw, str | bytes) else raw
                entry = canonical_entry(
                    id=id_,
                    created_at=_parse_time(created),
                    event_type=etype,
                    actor=actor,
                    service_id=service,
                    subject_type=stype,
                    subject_id=sid,
                    data=data,
                )
                recomputed = leaf_hash(canonical_json(entry))
        except (ValueError, TypeError) as exc:
            recomputed = None
            error = f"stored event is unreadable ({type(exc).__name__})"
        assert index is not None
        yield _Row(index, digest, recomputed, error, purged is not None, etype, raw)


def _purge_ranges(data: Any) -> list[tuple[int, int]]:
    ranges = data.get("ranges", []) if isinstance(data, dict) else []
    return [(int(lo), int(hi)) for lo, hi in ranges]


def verify(
    session: Session, verifier: NoteVerifier, *, start: int | None = None, end: int | None = None
) -> VerifyReport:
    """Recompute every leaf from its stored event and check the tree against every signed checkpoint.

    Names the first leaf index at which the stored data no longer matches what was committed to.
    With ``start``/``end`` only events in ``[start, end)`` are recomputed; the leaf hashes of the
    whole tree are still checked against the checkpoints (that costs one hash per leaf).

    A purged event (retention dropped its payload) cannot be recomputed: its stored leaf hash is
    then authenticated by the checkpoints alone, and it must lie in a range that an integrated
    ``audit.purged`` event announced — otherwise "purging" would be a way to hide an edit.
    """
    problems = _Problems()
    bad = problems.bad
    tree = session.get(AuditTree, 1)
    size = tree.size if tree else 0
    lo = max(0, start or 0)
    hi = size if end is None else min(end, size)
    if lo > hi:
        raise InvalidInput(f"--from {lo} is past --to {hi}")
    # Two lists: the leaf hashes as stored, and as recomputed from the stored events. Checkpoints
    # authenticate the stored hashes; each event is then checked against its own stored hash, so
    # an edited event is named exactly, and a rewritten hash is caught by the checkpoints.
    stored: list[bytes] = []
    recomputed: list[bytes] = []
    purged_rows: list[int] = []
    announced: list[tuple[int, int]] = []
    expected_index = 0
    checked = 0
    duplicates: list[int] = []
    holes = 0
    located: list[int] = []
    """Leaves named exactly; a checkpoint mismatch in their interval is blamed on them."""

    def leaf_bad(index: int, message: str) -> None:
        bad(index, message)
        located.append(index)

    for row in _stored_rows(session):
        if not isinstance(row.leaf_index, int):  # SQLite keeps whatever text is written to a column
            leaf_bad(expected_index, f"a stored leaf index ({row.leaf_index!r}) is not a number")
            continue
        if row.leaf_index != expected_index:
            if row.leaf_index < expected_index:
                duplicates.append(row.leaf_index)
                continue
            holes += 1
            leaf_bad(
                expected_index, f"leaf {expected_index} is missing (next stored leaf is {row.leaf_index})"
            )
            # Placeholders keep list positions equal to leaf indexes for the checkpoint checks.
            missing = row.leaf_index - expected_index
            stored.extend([b"\0" * 32] * missing)
            recomputed.extend([b"\0" * 32] * missing)
            expected_index = row.leaf_index
        index = row.leaf_index
        try:
            stored_hash = bytes.fromhex(row.leaf_hash or "")
            # Only the lower-case spelling is ever written; "A" for "a" is an edit too.
            if len(stored_hash) != 32 or stored_hash.hex() != row.leaf_hash:
                raise ValueError
        except ValueError:
            leaf_bad(index, f"leaf {index}: stored leaf hash is not a SHA-256 hex digest")
            stored_hash = b"\0" * 32
        stored.append(stored_hash)
        recomputed_hash = row.recomputed if row.recomputed is not None else stored_hash
        recomputed.append(stored_hash if row.purged else recomputed_hash)
        if row.purged:
            purged_rows.append(index)
        elif row.recomputed == stored_hash and row.event_type == "audit.purged":
            announced.extend(_purge_ranges(row.data()))
        if lo <= index < hi and not row.purged:
            checked += 1
            if row.recomputed is None:
                leaf_bad(index, f"leaf {index}: {row.error}")
            elif recomputed_hash != stored_hash:
                leaf_bad(index, f"leaf {index}: event content does not match its leaf hash")
        expected_index += 1
    if len(stored) == size - 1 and not holes and duplicates:
        holes += 1  # the last leaf's index was rewritten to an earlier one
    for index in duplicates:
        # With a hole as well, a row's index was rewritten: the hole names the edited leaf (the
        # order of the two rows claiming one index says nothing). Without one, a row was copied.
        if holes:
            problems.messages.append(f"leaf {index} is stored twice (another leaf's index was rewritten)")
        else:
            leaf_bad(index, f"leaf {index} is stored twice")
    if len(stored) != size:
        bad(min(len(stored), size), f"tree size is {size} but {len(stored)} leaves are stored")
    for index in purged_rows:
        if not any(a <= index < b for a, b in announced):
            leaf_bad(index, f"leaf {index}: payload removed without an audited purge covering it")

    checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)).all()
    prefix_root = _PrefixRoots(stored)
    recomputed_root = _PrefixRoots(recomputed)
    last_good_size = 0
    for cp in checkpoints:
        try:
            signed = verifier.verify(cp.note)
        except CheckpointError as exc:
            problems.bad_checkpoint(cp.size, f"checkpoint at size {cp.size}: {exc}")
            continue
        if signed.size != cp.size or signed.root.hex() != cp.root:
            problems.bad_checkpoint(
                signed.size,
                f"checkpoint at size {signed.size}: stored size/root differ from the signed note",
            )
        if signed.size > len(stored):
            bad(len(stored), f"checkpoint at size {signed.size} is beyond the {len(stored)} stored leaves")
            continue
        if prefix_root.root(signed.size) != signed.root and recomputed_root.root(signed.size) == signed.root:
            # Only stored leaf hashes were edited; the events still hash to the signed root, and
            # the edited hashes were named one by one above.
            last_good_size = signed.size
        elif prefix_root.root(signed.size) != signed.root:
            # A leaf hash was rewritten together with its event (or a leaf removed): the change lies
            # between the last checkpoint that still verifies and this one. A leaf already named in
            # that interval explains it; otherwise the interval's start is the best we can name.
            explained = [i for i in located if last_good_size <= i < signed.size]
            bad(
                min(explained) if explained else last_good_size,
                f"leaves {last_good_size}..{signed.size - 1} no longer match the checkpoint signed at "
                f"size {signed.size}",
            )
        else:
            last_good_size = signed.size
    if tree is not None and len(stored) == size and prefix_root.root(size).hex() != tree.root:
        bad(size, "the stored tree root does not match the stored leaves")
    pending = session.scalar(select(func.count()).where(AuditEvent.leaf_index.is_(None))) or 0
    return VerifyReport(
        ok=not problems.messages,
        size=size,
        checked=checked,
        checkpoints=len(checkpoints),
        pending=pending,
        first_bad_index=problems.first_bad,
        problems=problems.messages,
        first_bad_checkpoint=problems.first_bad_checkpoint,
        purged=len(purged_rows),
        range=(lo, hi) if start is not None or end is not None else None,
    )


# --- proofs ---------------------------------------------------------------------------------------


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


def checkpoint_at(session: Session, size: int | None) -> AuditCheckpoint:
    """The signed checkpoint of exactly ``size`` leaves (the newest when None): proofs are only
    useful against a root somebody signed."""
    if size is None:
        found = latest_checkpoint(session)
        if found is None:
            raise NotFound("no checkpoint has been signed yet")
        return found
    found = session.scalar(
        select(AuditCheckpoint).where(AuditCheckpoint.size == size).order_by(AuditCheckpoint.id).limit(1)
    )
    if found is None:
        raise NotFound(f"no signed checkpoint at tree size {size}")
    return found


def checkpoint_sizes(session: Session) -> list[int]:
    return list(session.scalars(select(AuditCheckpoint.size).distinct().order_by(AuditCheckpoint.size)))


def tree_levels(session: Session, size: int) -> TreeLevels:
    """The stored leaf hashes up to ``size``. They are not trusted: every proof built from them is
    checked by the client against a signed checkpoint, so a corrupted hash only yields a failing proof."""
    events = select(AuditEvent.leaf_index, AuditEvent.leaf_hash).where(
        AuditEvent.leaf_index.is_not(None), AuditEvent.leaf_index < size
    )
    archived = select(AuditArchivedLeaf.leaf_index, AuditArchivedLeaf.leaf_hash).where(
        AuditArchivedLeaf.leaf_index < size
    )
    rows = session.execute(events.union_all(archived).order_by(text("1")).execution_options(yield_per=20000))
    raw = b"".join(bytes.fromhex(h or "") for _, h in rows)
    levels = TreeLevels(raw)
    if levels.size != size:
        raise NotFound(f"only {levels.size} of the {size} leaves are stored")
    return levels


def entry_for(session: Session, index: int) -> tuple[AuditEvent, dict[str, Any] | None]:
    event = session.scalar(select(AuditEvent).where(AuditEvent.leaf_index == index))
    if event is None:
        archived = session.get(AuditArchivedLeaf, index)
        if archived is None:
            raise NotFound(f"no integrated event at leaf index {index}")
        # A transient stand-in, never added to the session: the leaf's hash, no payload.
        event = AuditEvent(
            id=archived.event_id,
            created_at=archived.created_at,
            event_type=archived.event_type,
            actor="",
            data={},
            leaf_index=index,
            leaf_hash=archived.leaf_hash,
            purged_at=archived.archived_at,
        )
    if event.purged_at is not None:
        return event, None
    return event, json.loads(canonical_event_bytes(event))


def inclusion(session: Session, index: int, size: int | None = None) -> dict[str, Any]:
    """Inclusion proof of leaf ``index`` in the checkpoint of ``size`` (newest when None)."""
    checkpoint = checkpoint_at(session, size)
    if not 0 <= index < checkpoint.size:
        raise InvalidInput(f"leaf index {index} is not in the checkpoint of size {checkpoint.size}")
    event, entry = entry_for(session, index)
    proof = tree_levels(session, checkpoint.size).inclusion_proof(index, checkpoint.size)
    return {
        "leaf_index": index,
        "tree_size": checkpoint.size,
        "leaf_hash": event.leaf_hash,
        "entry": entry,
        "proof": [p.hex() for p in proof],
        "checkpoint": checkpoint.note,
    }


def consistency(session: Session, old_size: int, new_size: int | None = None) -> dict[str, Any]:
    """Consistency proof between two signed checkpoints (the newer defaults to the newest)."""
    new = checkpoint_at(session, new_size)
    old = checkpoint_at(session, old_size)
    if old.size > new.size:
        raise InvalidInput(f"old size {old.size} is larger than new size {new.size}")
    proof = tree_levels(session, new.size).consistency_proof(old.size, new.size)
    return {
        "old_size": old.size,
        "new_size": new.size,
        "proof": [p.hex() for p in proof],
        "old_checkpoint": old.note,
        "new_checkpoint": new.note,
    }


class _PrefixRoots:
    """Roots of prefixes of one leaf list, built incrementally so many checkpoints cost one pass."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.hashes = hashes
        self._range = CompactRange()
        self._roots: dict[int, bytes] = {}

    def root(self, size: int) -> bytes:
        if size in self._roots:
            return self._roots[size]
        if size < self._range.size:
            return root_from_leaf_hashes(self.hashes[:size])
        # Chunked extension: appending leaf by leaf cost seconds per million leaves.
        self._range.extend(self.hashes[self._range.size : size])
        self._roots[size] = self._range.root()
        return self._roots[size]


# --- retention, legal holds, purge (CSL-21 minimum, GAI-11 maximum) --------------------------------

LOG_MINIMUM_DAYS = 184
"""CSL-21 / LM-9: logs are kept at least six months; the longest six-month span has 184 days."""
NEVER_PURGED = ("audit",)
"""The log's own events (purge announcements, shredding, holds) are what verification relies on."""


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int
    days: dict[str, int]

    @classmethod
    def from_settings(cls, default_days: int, days: dict[str, int]) -> RetentionPolicy:
        for name, value in {"default": default_days, **days}.items():
            if not isinstance(value, int) or value < LOG_MINIMUM_DAYS:
                raise InvalidInput(
                    f"retention for {name!r} is {value} days; logs must be kept at least "
                    f"{LOG_MINIMUM_DAYS} days (CSL-21, six months)",
                    field="retention_days",
                )
        return cls(default_days=default_days, days=dict(days))

    def days_for(self, record_type: str) -> int | None:
        """Days to keep a record type (an event's family or ``generations``); None: kept forever."""
        family = record_type.split(".", 1)[0]
        if family in NEVER_PURGED:
            return None
        return self.days.get(record_type, self.days.get(family, self.default_days))


def place_hold(session: Session, *, case_id: str, subject_id: str, reason: str, actor: str) -> LegalHold:
    """Keep everything about ``subject_id`` (an account id, produce id…) while case ``case_id`` is open."""
    if not case_id.strip() or not subject_id.strip():
        raise InvalidInput("a legal hold needs a case id and a subject id")
    hold = LegalHold(case_id=case_id, subject_id=subject_id, reason=reason, created_by=actor)
    session.add(hold)
    session.flush()
    record(
        session,
        "audit.hold_placed",
        actor=actor,
        subject_type="legal_hold",
        subject_id=str(hold.id),
        data={"case": case_id, "subject": subject_id},
    )
    return hold


def release_hold(session: Session, hold_id: int, *, actor: str) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(f"no legal hold {hold_id}")
    if hold.released_at is None:
        hold.released_at = utcnow()
        record(
            session,
            "audit.hold_released",
            actor=actor,
            subject_type="legal_hold",
            subject_id=str(hold.id),
            data={"case": hold.case_id},
        )
    return hold


def held_subjects(session: Session) -> set[str]:
    return set(session.scalars(select(LegalHold.subject_id).where(LegalHold.released_at.is_(None))))


@dataclass
class PurgeResult:
    events: int
    generations: int
    ranges: list[list[int]]
    archived: int = 0
    """Purged leaves whose rows were dropped (their hashes kept in ``audit_archived_leaves``)."""


def purge(
    session: Session, policy: RetentionPolicy, *, actor: str = "system", now: dt.datetime | None = None
) -> PurgeResult:
    """Drop the payload of integrated events past their retention, keeping their leaf hashes.

    Purging a Merkle log means keeping its skeleton: the row keeps its leaf index, leaf hash, type
    and time, and loses actor, subjects and data. Checkpoints and proofs stay valid because they
    only ever use leaf hashes; :func:`verify` accepts a payload-less leaf only inside a range an
    integrated ``audit.purged`` event announced. Events under a legal hold, and events never
    integrated, are left alone. Generation records past their retention are deleted.
    """
    from synthgate.provenance import service as provenance
    from synthgate.provenance.models import Generation

    now = now or utcnow()
    held = held_subjects(session)
    held_produce: set[str] = set()
    if held:
        held_produce = set(
            session.scalars(select(Generation.produce_id).where(Generation.account_id.in_(held)))
        )
    held_all = held | held_produce
    held_actors = {f"account:{h}" for h in held}
    families = session.scalars(select(AuditEvent.event_type).distinct()).all()
    purged_indexes: list[int] = []
    for event_type in families:
        days = policy.days_for(event_type)
        if days is None:
            continue
        cutoff = now - dt.timedelta(days=days)
        rows = session.execute(
            select(AuditEvent.id, AuditEvent.leaf_index, AuditEvent.subject_id, AuditEvent.actor).where(
                AuditEvent.event_type == event_type,
                AuditEvent.created_at < cutoff,
                AuditEvent.leaf_index.is_not(None),
                AuditEvent.purged_at.is_(None),
            )
        ).all()
        ids: list[int] = []
        for event_id, index, subject, actor_ref in rows:
            if index is None or subject in held_all or actor_ref in held_actors:
                continue
            ids.append(event_id)
            purged_indexes.append(index)
        for chunk in range(0, len(ids), 500):
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.id.in_(ids[chunk : chunk + 500]))
                .values(actor="", service_id=None, subject_type=None, subject_id=None, data={}, purged_at=now)
            )
    generation_days = policy.days_for("generations")
    generations = 0
    if generation_days is not None:
        generations = provenance.purge_generations(
            session, before=now - dt.timedelta(days=generation_days), keep_accounts=held
        )
    archived = _archive_purged(session, policy, now)
    purged_indexes.sort()
    ranges: list[list[int]] = []
    for i in purged_indexes:
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    if purged_indexes or generations:
        record(
            session,
            "audit.purged",
            actor=actor,
            subject_type="audit_log",
            data={"ranges": ranges, "events": len(purged_indexes), "generations": generations},
        )
    return PurgeResult(events=len(purged_indexes), generations=generations, ranges=ranges, archived=archived)


_ARCHIVE_COLUMNS = "leaf_index, leaf_hash, event_id, event_type, created_at, archived_at"
_ARCHIVE_SELECT = "leaf_index, leaf_hash, id, event_type, created_at, :now"


def _archive_purged(session: Session, policy: RetentionPolicy, now: dt.datetime) -> int:
    """Free the storage of purged events, keeping their leaf hashes in ``audit_archived_leaves``.

    PostgreSQL: a month is dropped whole once every event type's retention has passed for all of
    it (so each of its events is either purged or must stay: the log's own events and legal
    holds). The month is detached, its purged rows' skeletons copied to the archive, the rows
    that stay re-inserted (they land in the DEFAULT partition), and the detached table dropped —
    no row-by-row delete, no dead tuples. Purged rows in the DEFAULT partition, and every purged
    row on SQLite, are archived and deleted row by row. Returns how many leaves were archived.
    """
    conn = session.connection()
    # Bound with the column's own type, so SQLite stores the time in the spelling it reads back.
    now_param = bindparam("now", now, type_=AuditArchivedLeaf.__table__.c.archived_at.type)
    archived = 0
    if conn.dialect.name == "postgresql":
        longest = max([policy.default_days, *(d for name, d in policy.days.items() if name != "generations")])
        cutoff = now - dt.timedelta(days=longest)
        for month in partitions.month_partitions(conn, "audit_events"):
            if month.end > cutoff:
                continue
            detached = partitions.detach_partition(conn, month)
            archived += conn.execute(
                text(
                    f"INSERT INTO audit_archived_leaves ({_ARCHIVE_COLUMNS}) SELECT {_ARCHIVE_SELECT} "
                    f"FROM {detached} WHERE purged_at IS NOT NULL"
                ).bindparams(now_param)
            ).rowcount
            conn.execute(text(f"INSERT INTO audit_events SELECT * FROM {detached} WHERE purged_at IS NULL"))
            conn.execute(text(f"DROP TABLE {detached}"))
        source = f'"{partitions.SCHEMA}"."audit_events_default"'
    else:
        source = "audit_events"
    archived += conn.execute(
        text(
            f"INSERT INTO audit_archived_leaves ({_ARCHIVE_COLUMNS}) SELECT {_ARCHIVE_SELECT} "
            f"FROM {source} WHERE purged_at IS NOT NULL"
        ).bindparams(now_param)
    ).rowcount
    conn.execute(text(f"DELETE FROM {source} WHERE purged_at IS NOT NULL"))
    return archived
