"""Audit log benchmark: appends/s under concurrent writers (SQLite, PostgreSQL), verification time,
proof size and time at 1 M and 10 M leaves — side by side with pymerkle on the same data.

    .venv/bin/python bench/audit_log.py [--events 20000] [--verify 1000000] [--proof-sizes 1000000 10000000]
        [--pg-url postgresql://postgres@127.0.0.1:5432/bench_audit] [--write-docs]

Targets (issue 6): >= 20,000 appends/s batched; verification of 1 M events <= 10 s; proofs logarithmic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteSigner
from synthgate.audit.merkle import verify_consistency, verify_inclusion
from synthgate.audit.proofs import TreeLevels
from synthgate.config import Settings, normalise_database_url
from synthgate.db import Database, upgrade

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADING = "## Audit log (issue 6)"
BATCH = 200


def fresh_db(kind: str, pg_url: str, tmp: Path) -> Database:
    if kind == "sqlite":
        data = tmp / f"sqlite-{time.monotonic_ns()}"
        settings = Settings(data_dir=data, database_url=None, scheduler=False)
    else:
        url = normalise_database_url(pg_url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        settings = Settings(data_dir=tmp / "pg", database_url=url, scheduler=False)
    upgrade(settings)
    return Database(settings)


def _event(n: int, i: int) -> dict[str, Any]:
    """A pipeline-sized event (the gateway writes ones like it on every request)."""
    return {
        "event_type": "pipeline.input_screening",
        "actor": f"service:w{n}",
        "service_id": "0f8fad5bd9cb469fa165a1a4a1b2c3d4",
        "subject_type": "produce_id",
        "subject_id": f"01JD{n:04d}{i:018d}",
        "data": {"mode": "two_phase", "action": "allow", "findings": 0, "categories": [], "i": i},
    }


def appends(db: Database, writers: int, events: int, *, batched: bool) -> float:
    """Events/s committed by ``writers`` threads, each committing batches of ``BATCH`` events:
    one ``record_many`` per batch (batched) or one ``record`` call per event (ORM objects)."""
    per_writer = events // writers

    def work(n: int) -> None:
        done = 0
        while done < per_writer:
            count = min(BATCH, per_writer - done)
            with db.session() as session:
                if batched:
                    audit.record_many(session, [_event(n, done + i) for i in range(count)])
                else:
                    for i in range(count):
                        e = _event(n, done + i)
                        audit.record(
                            session,
                            e["event_type"],
                            actor=e["actor"],
                            service_id=e["service_id"],
                            subject_type=e["subject_type"],
                            subject_id=e["subject_id"],
                            data=e["data"],
                        )
            done += count

    threads = [threading.Thread(target=work, args=(n,)) for n in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_writer * writers / (time.perf_counter() - start)


def integrate_rate(db: Database) -> float:
    start = time.perf_counter()
    n = audit.integrate_all(db.sessions)
    return n / (time.perf_counter() - start)


def pymerkle_sqlite_appends(events: int, tmp: Path) -> float:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(tmp / f"pymerkle-{time.monotonic_ns()}.db"), algorithm="sha256")
    entries = [audit.canonical_json(_event(0, i)) for i in range(events)]
    start = time.perf_counter()
    for chunk in range(0, events, BATCH):
        tree.append_entries(entries[chunk : chunk + BATCH])
    return events / (time.perf_counter() - start)


def fill_bulk(db: Database, count: int) -> None:
    """Insert ``count`` integrated events quickly (bulk insert, then the real sequencer)."""
    for chunk in range(0, count, 20000):
        with db.session() as session:
            audit.record_many(session, [_event(1, i) for i in range(chunk, min(count, chunk + 20000))])
    audit.integrate_all(db.sessions)


def verify_time(db: Database, signer: NoteSigner) -> tuple[float, bool]:
    with db.session() as session:
        audit.sign_checkpoint(session, signer, signer.name)
    start = time.perf_counter()
    with db.session() as session:
        report = audit.verify(session, signer.verifier())
    return time.perf_counter() - start, report.ok


def pymerkle_verify_time(count: int) -> float:
    """pymerkle's equivalent: rebuild the tree from the entries and take its root."""
    from pymerkle import InmemoryTree

    entries = [audit.canonical_json(_event(1, i)) for i in range(count)]
    start = time.perf_counter()
    tree = InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    tree.get_root()
    return time.perf_counter() - start


def proofs(size: int, peer: bool) -> dict[str, Any]:
    leaves = b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size))
    start = time.perf_counter()
    levels = TreeLevels(leaves)
    build = time.perf_counter() - start
    root = levels.root()
    samples = [(size * k) // 101 for k in range(1, 101)]
    times = []
    proof: list[bytes] = []
    for index in samples:
        t0 = time.perf_counter()
        proof = levels.inclusion_proof(index, size)
        times.append(time.perf_counter() - t0)
        assert verify_inclusion(levels.leaf(index), index, size, proof, root)
    old = size // 3
    t0 = time.perf_counter()
    cproof = levels.consistency_proof(old, size)
    ctime = time.perf_counter() - t0
    assert verify_consistency(old, size, levels.root(old), root, cproof)
    result: dict[str, Any] = {
        "size": size,
        "build_s": build,
        "inclusion_ms": statistics.median(times) * 1000,
        "inclusion_bytes": 32 * len(proof),
        "consistency_ms": ctime * 1000,
        "consistency_bytes": 32 * len(cproof),
    }
    if peer:
        from pymerkle import InmemoryTree

        tree = InmemoryTree(algorithm="sha256")
        t0 = time.perf_counter()
        for i in range(size):
            tree.append_entry(i.to_bytes(8, "big"))
        result["peer_build_s"] = time.perf_counter() - t0
        ptimes = []
        for index in samples:
            t0 = time.perf_counter()
            pproof = tree.prove_inclusion(index + 1, size)
            ptimes.append(time.perf_counter() - t0)
        result["peer_inclusion_ms"] = statistics.median(ptimes) * 1000
        result["peer_inclusion_bytes"] = 32 * len(pproof.serialize()["path"])
        t0 = time.perf_counter()
        tree.prove_consistency(old, size)
        result["peer_consistency_ms"] = (time.perf_counter() - t0) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20000, help="appends per writer configuration")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--verify", type=int, default=1_000_000, help="events in the verification run")
    parser.add_argument("--proof-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--peer-max", type=int, default=1_000_000, help="largest tree pymerkle builds")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_audit")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = NoteSigner("bench.local/audit", Ed25519PrivateKey.generate())
    lines = [HEADING, "", f"`bench/audit_log.py` run {dt.date.today().isoformat()} on {_machine()}.", ""]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        peer_rate = pymerkle_sqlite_appends(args.events, tmp)
        lines += [
            f"Machine load at start: {_load()}.",
            "",
            "| backend | writers | appends/s batched (`record_many`, commit per 200) "
            "| appends/s one `record` per event | integrate (leaves/s) "
            "| pymerkle SqliteTree appends/s (1 writer, batches of 200) | ratio batched / pymerkle |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind in ["sqlite"] + ([] if args.no_postgres else ["postgres"]):
            for writers in args.writers:
                db = fresh_db(kind, args.pg_url, tmp)
                rate = appends(db, writers, args.events, batched=True)
                single = appends(db, writers, args.events // 4, batched=False)
                integ = integrate_rate(db)
                db.dispose()
                ratio = rate / peer_rate
                row = (
                    f"| {kind} | {writers} | {rate:,.0f} | {single:,.0f} | {integ:,.0f} | {peer_rate:,.0f} "
                    f"| {ratio:.2f}× |"
                )
                print(row, flush=True)
                lines.append(row)
        peer_verify = pymerkle_verify_time(min(args.verify, args.peer_max))
        lines += [
            "",
            "| verification | events | seconds | pymerkle rebuild of the same entries (s) "
            "| ratio pymerkle / ours |",
            "|---|---|---|---|---|",
        ]
        for kind in ["sqlite"] + ([] if args.no_postgres else ["postgres"]):
            db = fresh_db(kind, args.pg_url, tmp)
            fill_bulk(db, args.verify)
            seconds, ok = verify_time(db, signer)
            db.dispose()
            lines.append(
                f"| `audit.verify` on {kind} (every event re-hashed, every checkpoint checked; ok={ok}) "
                f"| {args.verify:,} | {seconds:.1f} | {peer_verify:.1f} | {peer_verify / seconds:.2f}× |"
            )
            print(lines[-1], flush=True)
    lines += [
        "",
        "| leaves | build levels (s) | inclusion proof (ms, median of 100) | bytes | consistency (ms) "
        "| bytes "
        "| pymerkle build (s) | pymerkle inclusion (ms) | pymerkle bytes | pymerkle consistency (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.proof_sizes:
        r = proofs(size, peer=size <= args.peer_max)
        peer = (
            f"{r['peer_build_s']:.1f} | {r['peer_inclusion_ms']:.3f} | {r['peer_inclusion_bytes']} "
            f"| {r['peer_consistency_ms']:.3f}"
            if "peer_build_s" in r
            else "not run (over --peer-max) | | |"
        )
        row = (
            f"| {size:,} | {r['build_s']:.1f} | {r['inclusion_ms']:.3f} | {r['inclusion_bytes']} "
            f"| {r['consistency_ms']:.3f} | {r['consistency_bytes']} | {peer} |"
        )
        print(row, flush=True)
        lines.append(row)
    if args.write_docs:
        _write_docs("\n".join(lines) + "\n")


def _load() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def _machine() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _write_docs(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n\n"
    if HEADING in text:
        start = text.index(HEADING)
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
