"""Signed export bundles for the authority (DSP-21), verifiable offline with nothing but this module.

A bundle is one UTF-8 text file of canonical JSON lines, in this order:

1. ``header`` — format, log origin, the export query, the tree size it is anchored to, the leaf
   indexes it holds (as ranges), the number of extra checkpoints, and the verifier key;
2. ``header_signature`` — a signed note (same Ed25519 key as the checkpoints) over the header line,
   so nobody can drop an event and its index from the list unnoticed;
3. ``checkpoint`` — the signed checkpoint (C2SP signed note) the proofs lead to;
4. ``consistency`` lines — older signed checkpoints with a consistency proof to the anchor, showing
   the log only grew in between (the checkpoint that first covered the exported range is included);
5. one ``leaf`` line per exported event — leaf index, leaf hash, the canonical entry (``null`` when
   retention purged the payload) and its inclusion proof in the anchor checkpoint.

Every line must be the canonical spelling of its JSON value, so any changed byte is either a
changed value (caught by a hash, a proof or a signature) or a non-canonical line (caught as such).
Problems are attributed to the leaf index each line is expected to hold, so the report names the
first bad index even when a line no longer parses.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from synthgate.audit.checkpoint import CheckpointError, NoteSigner, NoteVerifier, key_id
from synthgate.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from synthgate.audit.models import AuditCheckpoint, AuditEvent
from synthgate.audit.service import (
    VerifyReport,
    _Problems,
    canonical_event_bytes,
    canonical_json,
    latest_checkpoint,
    tree_levels,
)
from synthgate.errors import InvalidInput, NotFound

FORMAT = "synthgate-audit-bundle/1"
_LEAF_KEYS = {"kind", "leaf_index", "leaf_hash", "entry", "proof"}


def _ranges(indexes: Iterable[int]) -> list[list[int]]:
    """Sorted indexes as half-open ``[lo, hi)`` runs (an account's events are scattered)."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def _expand(runs: Any) -> list[int]:
    out: list[int] = []
    for lo, hi in runs:
        if not (isinstance(lo, int) and isinstance(hi, int)) or not 0 <= lo < hi:
            raise ValueError("bad leaf range")
        out.extend(range(lo, hi))
    return out


def build_bundle(
    session: Session,
    signing_key: Ed25519PrivateKey,
    origin: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    account: str | None = None,
    produce_ids: Iterable[str] = (),
    created_at: dt.datetime | None = None,
) -> str:
    """Export the integrated events in ``[since, until)`` (optionally of one account) as a bundle.

    Anchored to the newest signed checkpoint: run ``integrate_and_checkpoint`` first so it covers
    everything up to now. ``produce_ids`` are the account's generations, whose pipeline events
    carry the produce id as subject.
    """
    signer = NoteSigner(origin, signing_key)
    anchor = latest_checkpoint(session)
    if anchor is None:
        raise NotFound("no checkpoint has been signed yet; nothing can be exported verifiably")
    stmt = select(AuditEvent).where(AuditEvent.leaf_index.is_not(None), AuditEvent.leaf_index < anchor.size)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if account is not None:
        produce = list(produce_ids)
        conditions = [AuditEvent.subject_id == account, AuditEvent.actor == f"account:{account}"]
        if produce:
            conditions.append(AuditEvent.subject_id.in_(produce))
        stmt = stmt.where(or_(*conditions))
    events = session.scalars(stmt.order_by(AuditEvent.leaf_index)).all()
    levels = tree_levels(session, anchor.size)
    indexes = [e.leaf_index for e in events if e.leaf_index is not None]
    extra: list[dict[str, Any]] = []
    if indexes:
        # The first checkpoint that covered the newest exported event: what an inspector may have
        # been shown at the time; the consistency proof ties it to the anchor.
        first_cover = session.scalar(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.size > indexes[-1], AuditCheckpoint.size < anchor.size)
            .order_by(AuditCheckpoint.size)
            .limit(1)
        )
        if first_cover is not None:
            extra.append(
                {
                    "kind": "consistency",
                    "note": first_cover.note,
                    "proof": [p.hex() for p in levels.consistency_proof(first_cover.size, anchor.size)],
                }
            )
    header = {
        "kind": "header",
        "format": FORMAT,
        "origin": signer.name,
        "created_at": (created_at or dt.datetime.now(dt.UTC)).isoformat(),
        "query": {
            "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None,
            "account": account,
        },
        "tree_size": anchor.size,
        "count": len(indexes),
        "leaves": _ranges(indexes),
        "consistency": len(extra),
        "vkey": signer.vkey(),
    }
    header_line = canonical_json(header).decode()
    lines = [
        header_line,
        canonical_json(
            {"kind": "header_signature", "note": sign_text(signing_key, origin, header_line + "\n")}
        ).decode(),
        canonical_json({"kind": "checkpoint", "note": anchor.note}).decode(),
        *(canonical_json(e).decode() for e in extra),
    ]
    for event in events:
        assert event.leaf_index is not None
        entry = None if event.purged_at is not None else json.loads(canonical_event_bytes(event))
        lines.append(
            canonical_json(
                {
                    "kind": "leaf",
                    "leaf_index": event.leaf_index,
                    "leaf_hash": event.leaf_hash,
                    "entry": entry,
                    "proof": [p.hex() for p in levels.inclusion_proof(event.leaf_index, anchor.size)],
                }
            ).decode()
        )
    return "".join(line + "\n" for line in lines)


def sign_text(signing_key: Ed25519PrivateKey, name: str, text: str) -> str:
    """A signed note over arbitrary text: signed-note allows any text, not only checkpoints, and
    :meth:`NoteVerifier.verify_text` checks it with the same key that signs the checkpoints."""
    signature = signing_key.sign(text.encode("utf-8"))
    encoded = base64.b64encode(key_id(name, signing_key.public_key()) + signature).decode("ascii")
    return f"{text}\n— {name} {encoded}\n"


class BundleError(InvalidInput):
    """The file is not a bundle at all (empty, binary, no header)."""


def verify_bundle(data: bytes | str, verifier: NoteVerifier | None = None) -> VerifyReport:
    """Check a bundle with no database. ``verifier`` pins the log's key; without it the key in the
    bundle is used (and the report says so: a forger would ship their own key, so pin it)."""
    raw = data.encode() if isinstance(data, str) else data
    problems = _Problems()
    lines = raw.split(b"\n")
    if not lines or lines[-1] != b"":
        problems.messages.append("bundle does not end with a newline (truncated?)")
    else:
        lines = lines[:-1]
    if not lines or not lines[0].strip():
        raise BundleError("not an audit bundle: it is empty")

    def parse(number: int) -> dict[str, Any] | None:
        if number >= len(lines):
            return None
        line = lines[number]
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(value, dict) or canonical_json(value) != line:
            return None
        return value

    header = parse(0)
    expected: list[int] = []
    header_ok = header is not None and header.get("kind") == "header" and header.get("format") == FORMAT
    if header_ok:
        assert header is not None
        try:
            expected = _expand(header.get("leaves", []))
            extra_count = int(header.get("consistency", 0))
            tree_size = int(header["tree_size"])
            if len(expected) != header.get("count") or expected != sorted(set(expected)):
                raise ValueError("leaf list does not match its count")
        except (ValueError, TypeError, KeyError):
            header_ok = False
    if not header_ok or header is None:
        # Without a header the expected indexes are unknown: name the smallest index any leaf line claims.
        claimed = [
            v.get("leaf_index") for n in range(len(lines)) if (v := parse(n)) and v.get("kind") == "leaf"
        ]
        first = min([c for c in claimed if isinstance(c, int)], default=0)
        problems.bad(first, "bundle header is missing, altered or not canonical")
        return _report(problems, 0, 0, 0, None)
    first_expected = expected[0] if expected else tree_size

    key_note = ""
    if verifier is None:
        try:
            verifier = NoteVerifier.from_vkey(str(header.get("vkey", "")))
        except CheckpointError as exc:
            problems.bad(first_expected, f"bundle verifier key is unusable: {exc}")
            return _report(problems, tree_size, 0, 0, None)
        key_note = "verified with the key inside the bundle; pin the log's key with --key for real assurance"

    signature = parse(1)
    try:
        if signature is None or signature.get("kind") != "header_signature":
            raise CheckpointError("header signature line is missing, altered or not canonical")
        if verifier.verify_text(str(signature.get("note", ""))) != lines[0].decode() + "\n":
            raise CheckpointError("header signature signs a different header")
    except CheckpointError as exc:
        problems.bad(first_expected, f"bundle header signature: {exc}")

    root: bytes | None = None
    cp_line = parse(2)
    try:
        if cp_line is None or cp_line.get("kind") != "checkpoint":
            raise CheckpointError("checkpoint line is missing, altered or not canonical")
        checkpoint = verifier.verify(str(cp_line.get("note", "")), origin=str(header.get("origin")))
        if checkpoint.size != tree_size:
            raise CheckpointError(f"checkpoint size {checkpoint.size} is not the bundle's {tree_size}")
        root = checkpoint.root
    except CheckpointError as exc:
        problems.bad_checkpoint(tree_size, f"anchor checkpoint: {exc}")
        problems.bad(first_expected, "no leaf can be verified without the anchor checkpoint")

    for n in range(3, 3 + extra_count):
        value = parse(n)
        try:
            if value is None or value.get("kind") != "consistency":
                raise CheckpointError(f"line {n + 1}: consistency line is missing, altered or not canonical")
            older = verifier.verify(str(value.get("note", "")), origin=str(header.get("origin")))
            proof = [_hex(p) for p in value.get("proof", [])]
            if root is not None and not verify_consistency(older.size, tree_size, older.root, root, proof):
                raise CheckpointError(f"checkpoint at size {older.size} is not consistent with the anchor")
        except (CheckpointError, ValueError, TypeError) as exc:
            problems.bad_checkpoint(first_expected, f"older checkpoint: {exc}")

    start = 3 + extra_count
    checked = 0
    purged = 0
    for position, index in enumerate(expected):
        value = parse(start + position)
        if value is None or value.get("kind") != "leaf" or set(value) != _LEAF_KEYS:
            what = "missing" if start + position >= len(lines) else "altered or not canonical"
            problems.bad(index, f"leaf {index}: its line is {what}")
            continue
        if value.get("leaf_index") != index:
            problems.bad(
                min(index, _int(value.get("leaf_index"), index)), f"leaf {index}: line holds another index"
            )
            continue
        try:
            digest = _hex(value.get("leaf_hash"))
            proof = [_hex(p) for p in value.get("proof", [])]
        except (ValueError, TypeError):
            problems.bad(index, f"leaf {index}: leaf hash or proof is not hex")
            continue
        entry = value.get("entry")
        if entry is None:
            purged += 1
        elif leaf_hash(canonical_json(entry)) != digest:
            problems.bad(index, f"leaf {index}: event content does not match its leaf hash")
            continue
        if root is None:
            continue  # already reported: nothing can be verified without the anchor
        if not (len(digest) == 32 and verify_inclusion(digest, index, tree_size, proof, root)):
            problems.bad(index, f"leaf {index}: inclusion proof does not lead to the signed checkpoint")
            continue
        checked += 1
    if len(lines) > start + len(expected):
        problems.bad(
            expected[-1] + 1 if expected else tree_size,
            f"{len(lines) - start - len(expected)} line(s) beyond what the signed header lists",
        )
    report = _report(
        problems, tree_size, checked, 1 + extra_count, (expected[0], expected[-1] + 1) if expected else None
    )
    report.purged = purged
    if key_note:
        report.notes.append(key_note)
    report.notes.append(f"signed by {verifier.vkey()}")
    return report


def _hex(value: Any) -> bytes:
    """Decode lower-case hex only: ``bytes.fromhex`` also takes upper case, which would let a flipped
    letter through unnoticed."""
    if not isinstance(value, str):
        raise TypeError("not a hex string")
    raw = bytes.fromhex(value)
    if raw.hex() != value:
        raise ValueError("not lower-case hex")
    return raw


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


def _report(
    problems: _Problems, size: int, checked: int, checkpoints: int, span: tuple[int, int] | None
) -> VerifyReport:
    return VerifyReport(
        ok=not problems.messages,
        size=size,
        checked=checked,
        checkpoints=checkpoints,
        pending=0,
        first_bad_index=problems.first_bad,
        problems=problems.messages,
        first_bad_checkpoint=problems.first_bad_checkpoint,
        range=span,
    )
