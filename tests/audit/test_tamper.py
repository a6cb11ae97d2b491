"""A byte flipped anywhere in the stored log, or in an exported bundle, is caught and located
(CSL-21 logs the authority can trust; DSP-21 exports verifiable offline)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from synthgate.audit import service as audit
from synthgate.audit.bundle import build_bundle, verify_bundle
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.errors import InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from tests.conftest import IS_POSTGRES

EVENT_COLUMNS = (
    "id",
    "created_at",
    "event_type",
    "actor",
    "service_id",
    "subject_type",
    "subject_id",
    "data",
    "leaf_index",
    "leaf_hash",
)
CHECKPOINT_COLUMNS = ("size", "root", "note")
PG_CASTS = {
    "data": "json",
    "created_at": "timestamptz",
    "id": "bigint",
    "leaf_index": "bigint",
    "size": "bigint",
}


def fill_log(gateway: Gateway, events: int = 60, every: int = 9) -> None:
    """Events of every shape (unicode, nested data, sealed personal data), checkpoints at many sizes."""
    for i in range(events):
        with gateway.db.session() as session:
            audit.record(
                session,
                f"test.kind{i % 4}",
                actor=f"operator:tester{i % 3}",
                service_id=None if i % 5 else "svc123",
                subject_type="account" if i % 2 else None,
                subject_id=f"acc{i % 3}" if i % 2 else None,
                data={"n": i, "nested": {"ok": i % 2 == 0, "list": [1, "二", None]}, "note": "审计 ✓"},
                personal={"phone": f"+8613900000{i:03d}"} if i % 6 == 0 else None,
                personal_subject=f"account:acc{i % 7}",
                keys=gateway.keys,
            )
        if i % every == every - 1:
            integrate_and_checkpoint(gateway)
    integrate_and_checkpoint(gateway)


def verifier(gateway: Gateway) -> NoteVerifier:
    return NoteVerifier.from_vkey(audit_signer(gateway).vkey())


def run_verify(gateway: Gateway) -> audit.VerifyReport:
    with gateway.db.session() as session:
        return audit.verify(session, verifier(gateway))


def _read(gateway: Gateway, table: str, column: str, key: str, key_value: int) -> str | None:
    with gateway.db.engine.connect() as conn:
        value = conn.execute(
            text(f"SELECT CAST({column} AS TEXT) FROM {table} WHERE {key} = :k"), {"k": key_value}
        ).scalar()
    return None if value is None else str(value)


def _write(gateway: Gateway, table: str, column: str, key: str, key_value: int, value: str) -> None:
    target = f"CAST(:v AS {PG_CASTS[column]})" if IS_POSTGRES and column in PG_CASTS else ":v"
    with gateway.db.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE {table} SET {column} = {target} WHERE {key} = :k"), {"v": value, "k": key_value}
        )


def _flip(value: str, rng: random.Random) -> str | None:
    raw = bytearray(value.encode())
    position = rng.randrange(len(raw))
    raw[position] ^= 1 << rng.randrange(7)
    try:
        flipped = raw.decode()
    except UnicodeDecodeError:
        return None
    if "\x00" in flipped:
        return None  # neither database stores NUL in text; that is not a storable edit
    return flipped


def _same_json(a: str, b: str) -> bool:
    """JSON that reads back identical (e.g. ``\\u4F60`` for ``\\u4f60``) is not an edit."""
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def test_csl21_every_flipped_byte_in_the_stored_log_is_caught_and_located(gateway: Gateway) -> None:
    fill_log(gateway)
    assert run_verify(gateway).ok
    with gateway.db.engine.connect() as conn:
        events = conn.execute(text("SELECT id, leaf_index FROM audit_events ORDER BY leaf_index")).all()
        checkpoints = conn.execute(text("SELECT id, size FROM audit_checkpoints")).all()
    assert len(checkpoints) >= 7
    rng = random.Random(int(os.environ.get("SYNTHGATE_FLIP_SEED", "6")))
    caught = {"event": 0, "checkpoint": 0}
    trials = 0
    while trials < 120:
        on_event = rng.random() < 0.75
        if on_event:
            event_id, index = rng.choice(events)
            table, column = "audit_events", rng.choice(EVENT_COLUMNS)
            # Rows are found by a column the flip leaves alone: on PostgreSQL the partitioned table's
            # key is (id, created_at), so a flipped id may now equal another row's id.
            key, row_id = ("leaf_index", index) if column == "id" else ("id", event_id)
        else:
            row_id, index = rng.choice(checkpoints)
            table, column, key = "audit_checkpoints", rng.choice(CHECKPOINT_COLUMNS), "id"
        original = _read(gateway, table, column, key, row_id)
        if not original:
            continue  # NULL columns (no subject) hold no byte to flip
        flipped = _flip(original, rng)
        if flipped is None or (column == "data" and _same_json(original, flipped)):
            continue
        written_key = int(flipped) if column == key and flipped.isdigit() else row_id
        try:
            _write(gateway, table, column, key, row_id, flipped)
        except (IntegrityError, DBAPIError):
            continue  # the database itself refused the value (type, uniqueness): nothing stored
        trials += 1
        try:
            report = run_verify(gateway)
            where = f"{table}.{column} of leaf/size {index}: {original!r} -> {flipped!r}"
            assert not report.ok, where
            if on_event:
                assert report.first_bad_index == index, (where, report.problems)
            else:
                assert report.first_bad_checkpoint == index, (where, report.problems)
            caught["event" if on_event else "checkpoint"] += 1
        finally:
            _write(gateway, table, column, key, written_key, original)
    assert caught["event"] > 60 and caught["checkpoint"] > 15
    assert run_verify(gateway).ok  # every flip was undone: the log verifies again


def test_csl21_verify_range_recomputes_only_that_range(gateway: Gateway) -> None:
    fill_log(gateway, events=30)
    with gateway.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'operator:mallory' WHERE leaf_index = 20"))
    with gateway.db.session() as session:
        inside = audit.verify(session, verifier(gateway), start=15, end=25)
        before = audit.verify(session, verifier(gateway), start=0, end=10)
    assert not inside.ok and inside.first_bad_index == 20 and inside.checked == 10
    # Outside the range the event is not recomputed, and its hash is intact, so the checkpoints hold.
    assert before.ok and before.checked == 10 and before.range == (0, 10)


def _bundle(gateway: Gateway, **query: object) -> str:
    with gateway.db.session() as session:
        return build_bundle(
            session,
            gateway.keys.audit_signing_key,
            gateway.settings.audit_origin,
            **query,  # type: ignore[arg-type]
        )


def _expected_indexes(bundle: str) -> tuple[list[int], int]:
    lines = bundle.split("\n")
    header = json.loads(lines[0])
    indexes = [i for lo, hi in header["leaves"] for i in range(lo, hi)]
    return indexes, 3 + header["consistency"]


def test_dsp21_every_flipped_byte_in_a_bundle_is_caught_and_located(gateway: Gateway) -> None:
    fill_log(gateway, events=40)
    with gateway.db.session() as session:  # more events after the anchor's first cover: a consistency line
        audit.record(session, "test.late", actor="system")
    integrate_and_checkpoint(gateway)
    bundle = _bundle(gateway, account="acc1")
    pinned = verifier(gateway)
    good = verify_bundle(bundle, pinned)
    indexes, first_leaf_line = _expected_indexes(bundle)
    assert good.ok and good.checked == len(indexes) > 3, good
    raw = bundle.encode()
    line_of: list[int] = []
    for number, line in enumerate(raw.split(b"\n")):
        line_of.extend([number] * (len(line) + 1))
    rng = random.Random(21)
    positions = [*rng.sample(range(len(raw)), 250), len(raw) - 1, 0]
    for position in positions:
        tampered = bytearray(raw)
        tampered[position] ^= 1 << rng.randrange(8)
        report = verify_bundle(bytes(tampered), pinned)
        line = line_of[position]
        expected = (
            indexes[0] if line < first_leaf_line else indexes[min(line - first_leaf_line, len(indexes) - 1)]
        )
        assert not report.ok, position
        assert report.first_bad_index == expected, (position, line, report.problems)


def test_dsp21_removed_or_reordered_bundle_lines_are_caught(gateway: Gateway) -> None:
    fill_log(gateway, events=20)
    bundle = _bundle(gateway)
    indexes, first = _expected_indexes(bundle)
    lines = bundle.split("\n")[:-1]
    removed = lines[: first + 5] + lines[first + 6 :]
    report = verify_bundle("\n".join(removed) + "\n", verifier(gateway))
    assert not report.ok and report.first_bad_index == indexes[5]
    swapped = list(lines)
    swapped[first + 2], swapped[first + 7] = swapped[first + 7], swapped[first + 2]
    report = verify_bundle("\n".join(swapped) + "\n", verifier(gateway))
    assert not report.ok and report.first_bad_index == indexes[2]
    # A bundle signed by another key is refused when the log's key is pinned.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with gateway.db.session() as session:
        forged = build_bundle(session, Ed25519PrivateKey.generate(), gateway.settings.audit_origin)
    report = verify_bundle(forged, verifier(gateway))
    assert not report.ok and report.first_bad_index == indexes[0]


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dsp21_export_cli_bundle_verifies_offline_with_no_database(gateway: Gateway, tmp_path: Path) -> None:
    fill_log(gateway, events=25)
    env = {"SYNTHGATE_DATA_DIR": str(gateway.settings.data_dir)}
    if gateway.settings.database_url:
        env["SYNTHGATE_DATABASE_URL"] = gateway.settings.database_url
    today = dt.datetime.now(dt.UTC).date().isoformat()
    bundle = tmp_path / "export.jsonl"
    exported = _cli(["export", "--from", today, "--to", today, "-o", str(bundle)], **env)
    assert exported.returncode == 0, exported.stderr
    vkey = audit_signer(gateway).vkey()

    # Offline: an empty data directory and a database URL that cannot be reached. Nothing is opened.
    offline_dir = tmp_path / "offline"
    offline = {
        "SYNTHGATE_DATA_DIR": str(offline_dir),
        "SYNTHGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
    }
    result = _cli(["audit", "verify", str(bundle), "--key", vkey, "--json"], **offline)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["checked"] >= 25
    assert not offline_dir.exists()

    tampered = bundle.read_bytes().replace(b'"n":7,', b'"n":8,', 1)
    bundle.write_bytes(tampered)
    result = _cli(["audit", "verify", str(bundle), "--key", vkey, "--json"], **offline)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and not report["ok"] and report["first_bad_index"] is not None

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"")
    result = _cli(["audit", "verify", str(garbage)], **offline)
    assert result.returncode == 2 and "not an audit bundle" in result.stderr


def test_csl21_verify_rejects_a_backwards_range(gateway: Gateway) -> None:
    fill_log(gateway, events=12)
    with gateway.db.session() as session, pytest.raises(InvalidInput, match="past"):
        audit.verify(session, verifier(gateway), start=9, end=3)
