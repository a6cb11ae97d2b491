"""Writes the audit tables: append events, integrate them into the Merkle tree, sign checkpoints, verify.

``record`` is called by every domain's service inside its own transaction, so the event commits
or rolls back with the change it describes. ``integrate`` (the sequencer) runs in its own short
transaction, in the background and before checkpoints and verification.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synthgate.audit.checkpoint import Checkpoint, CheckpointError, NoteSigner, NoteVerifier
from synthgate.audit.merkle import CompactRange, leaf_hash, root_from_leaf_hashes
from synthgate.audit.models import AuditCheckpoint, AuditEvent, AuditTree
from synthgate.db import utcnow

INTEGRATE_BATCH = 5000


def record(
    session: Session,
    event_type: str,
    *,
    actor: str,
    service_id: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the current transaction. Never put raw personal data in ``data``."""
    event = AuditEvent(
        event_type=event_type,
        actor=actor,
        service_id=service_id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data or {},
        created_at=utcnow(),
    )
    session.add(event)
    return event


def canonical_event_bytes(event: AuditEvent) -> bytes:
    """The exact bytes hashed into the leaf: every stored field, canonical JSON."""
    return json.dumps(
        {
            "id": event.id,
            "created_at": event.created_at.astimezone(dt.UTC).isoformat(),
            "type": event.event_type,
            "actor": event.actor,
            "service": event.service_id,
            "subject_type": event.subject_type,
            "subject_id": event.subject_id,
            "data": event.data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _tree(session: Session, *, lock: bool) -> AuditTree:
    if lock:
        # An UPDATE takes the write lock on SQLite and a row lock on PostgreSQL before we read,
        # so two sequencers in different workers never hand out the same leaf index.
        session.execute(update(AuditTree).where(AuditTree.id == 1).values(updated_at=utcnow()))
    tree = session.get(AuditTree, 1, populate_existing=True)
    if tree is None:
        tree = AuditTree(id=1, size=0, frontier=[], root=root_from_leaf_hashes([]).hex())
        session.add(tree)
        session.flush()
    return tree


def integrate(session: Session, batch: int = INTEGRATE_BATCH) -> int:
    """Give pending events contiguous leaf indexes and extend the tree. Returns how many."""
    tree = _tree(session, lock=True)
    pending = session.scalars(
        select(AuditEvent).where(AuditEvent.leaf_index.is_(None)).order_by(AuditEvent.id).limit(batch)
    ).all()
    if not pending:
        return 0
    frontier = CompactRange.from_state(tree.size, [bytes.fromhex(h) for h in tree.frontier])
    for event in pending:
        digest = leaf_hash(canonical_event_bytes(event))
        event.leaf_index = frontier.size
        event.leaf_hash = digest.hex()
        frontier.append(digest)
    tree.size = frontier.size
    tree.frontier = [h.hex() for h in frontier.state()]
    tree.root = frontier.root().hex()
    tree.updated_at = utcnow()
    return len(pending)


def integrate_all(db_session_factory: Any) -> int:
    """Integrate everything pending, one committed batch at a time."""
    total = 0
    while True:
        with db_session_factory() as session:
            n = integrate(session)
            session.commit()
        total += n
        if n < INTEGRATE_BATCH:
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "checked": self.checked,
            "checkpoints": self.checkpoints,
            "pending": self.pending,
            "first_bad_index": self.first_bad_index,
            "problems": self.problems,
        }


def verify(session: Session, verifier: NoteVerifier) -> VerifyReport:
    """Recompute every leaf from its stored event and check the tree against every signed checkpoint.

    Names the first leaf index at which the stored data no longer matches what was committed to.
    """
    problems: list[str] = []
    first_bad: int | None = None

    def bad(index: int, message: str) -> None:
        nonlocal first_bad
        problems.append(message)
        if first_bad is None or index < first_bad:
            first_bad = index

    tree = session.get(AuditTree, 1)
    size = tree.size if tree else 0
    # Two lists: the leaf hashes as stored, and as recomputed from the stored events. Checkpoints
    # authenticate the stored hashes; each event is then checked against its own stored hash, so
    # an edited event is named exactly, and a rewritten hash is caught by the checkpoints.
    stored: list[bytes] = []
    expected_index = 0
    rows = session.execute(
        select(AuditEvent).where(AuditEvent.leaf_index.is_not(None)).order_by(AuditEvent.leaf_index)
    ).scalars()
    for event in rows:
        assert event.leaf_index is not None
        if event.leaf_index != expected_index:
            bad(expected_index, f"leaf {expected_index} is missing (next stored leaf is {event.leaf_index})")
            expected_index = event.leaf_index
        digest = leaf_hash(canonical_event_bytes(event))
        if event.leaf_hash != digest.hex():
            bad(event.leaf_index, f"leaf {event.leaf_index}: event content does not match its leaf hash")
        try:
            stored.append(bytes.fromhex(event.leaf_hash or ""))
        except ValueError:
            bad(event.leaf_index, f"leaf {event.leaf_index}: stored leaf hash is not hex")
            stored.append(digest)
        expected_index += 1
    if len(stored) != size:
        bad(min(len(stored), size), f"tree size is {size} but {len(stored)} leaves are stored")

    checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)).all()
    prefix_root = _PrefixRoots(stored)
    last_good_size = 0
    for cp in checkpoints:
        try:
            signed = verifier.verify(cp.note)
        except CheckpointError as exc:
            bad(cp.size, f"checkpoint at size {cp.size}: {exc}")
            continue
        if signed.size != cp.size or signed.root.hex() != cp.root:
            bad(cp.size, f"checkpoint at size {cp.size}: stored size/root differ from the signed note")
        if signed.size > len(stored):
            bad(len(stored), f"checkpoint at size {signed.size} is beyond the {len(stored)} stored leaves")
            continue
        if prefix_root.root(signed.size) != signed.root:
            # A leaf hash was rewritten (or a leaf removed): the change lies between the last
            # checkpoint that still verifies and this one, and that is the index we can name.
            bad(
                last_good_size,
                f"leaves {last_good_size}..{signed.size - 1} no longer match the checkpoint signed at "
                f"size {signed.size}",
            )
        else:
            last_good_size = signed.size
    if tree is not None and len(stored) == size and prefix_root.root(size).hex() != tree.root:
        bad(size, "the stored tree root does not match the stored leaves")
    pending = session.scalar(select(func.count()).where(AuditEvent.leaf_index.is_(None))) or 0
    return VerifyReport(
        ok=not problems,
        size=size,
        checked=len(stored),
        checkpoints=len(checkpoints),
        pending=pending,
        first_bad_index=first_bad,
        problems=problems,
    )


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
        while self._range.size < size:
            self._range.append(self.hashes[self._range.size])
        self._roots[size] = self._range.root()
        return self._roots[size]
