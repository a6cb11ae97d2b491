"""The feature library (DSP-10, TC-8.1): admission records, four eyes, versions, import/export, reload."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.errors import Conflict, Forbidden, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.moderation import service as library
from synthgate.moderation.models import LibraryEntry
from synthgate.moderation.screener import new_library_cache
from tests.moderation.conftest import publish_terms


def test_dsp10_tc81_entry_carries_its_admission_record_and_needs_a_second_approver(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        [entry] = library.propose(
            session,
            [
                library.Proposal(
                    "term", "制造炸弹", "A.1.5", 5, "police notice 12", "instructions for bombs", "R-4.2"
                )
            ],
            actor="operator:alice",
        )
        entry_id = entry.id
        with pytest.raises(Forbidden):
            library.decide(session, [entry_id], approve=True, actor="operator:alice")
    with gateway.db.session() as session, pytest.raises(Conflict):  # nothing approved yet
        library.publish(session, actor="operator:bob")
    with gateway.db.session() as session:
        library.decide(session, [entry_id], approve=True, actor="operator:bob", note="ok")
        version = library.publish(session, actor="operator:bob", note="first")
        assert version.version == 1 and version.added == 1
    with gateway.db.session() as session:
        row = session.get(LibraryEntry, entry_id)
        assert row is not None
        assert (row.admitted_by, row.admission_reason, row.admission_rule, row.source) == (
            "operator:alice",
            "instructions for bombs",
            "R-4.2",
            "police notice 12",
        )
        assert row.decided_by == "operator:bob" and row.added_in_version == 1 and row.admitted_at
        events = [e.event_type for e in session.scalars(select(AuditEvent))]
        assert {
            "moderation.library.proposed",
            "moderation.library.approved",
            "moderation.library.published",
        } <= set(events)
        with pytest.raises(Conflict):  # the same rule twice
            library.propose(session, [library.Proposal("term", "制造炸弹", "A.1.5")], actor="operator:carol")


def test_dsp10_bad_entries_are_refused_clearly(gateway: Gateway) -> None:
    bad = [
        library.Proposal("term", "   ", "A.1.5"),
        library.Proposal("term", "!!!", "A.1.5"),
        library.Proposal("pattern", "(unclosed", "A.1.5"),
        library.Proposal("sha256", "xyz", "A.1.5"),
        library.Proposal("term", "ok", "not a category!"),
        library.Proposal("term", "ok", "A.1.5", severity=9),
        library.Proposal("weird", "ok", "A.1.5"),
    ]
    with gateway.db.session() as session:
        for proposal in bad:
            with pytest.raises(InvalidInput):
                library.propose(session, [proposal], actor="a")


def test_dsp10_versions_retire_and_rebuild(gateway: Gateway) -> None:
    publish_terms(gateway, ("term", "坏词甲", "A.1.8"), ("term", "坏词乙", "A.1.8"))
    with gateway.db.session() as session:
        entry = session.scalar(select(LibraryEntry).where(LibraryEntry.value == "坏词甲"))
        assert entry is not None
        library.request_retirement(session, entry.id, actor="operator:carol", reason="false positives")
        assert library.publish(session, actor="operator:carol").version == 2
    with gateway.db.session() as session:
        assert sorted(e.value for e in library.lexicon_entries(session, 1)) == ["坏词乙", "坏词甲"]
        assert [e.value for e in library.lexicon_entries(session, 2)] == ["坏词乙"]


def test_dsp10_tc81_import_and_export_round_trip_csv_and_json(gateway: Gateway) -> None:
    rows = [
        {"kind": "term", "value": "词一", "category": "A.1.1", "severity": "5", "admission_reason": "r1"},
        {"kind": "allow", "value": "词一寺", "category": "A.1.1", "severity": "1", "admission_rule": "R-9"},
        {"kind": "pattern", "value": r"kill\s+\w+", "category": "A.1.5", "severity": "4"},
    ]
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["kind", "value", "category", "severity", "admission_reason", "admission_rule"]
    )
    writer.writeheader()
    writer.writerows(rows)
    with gateway.db.session() as session:
        entries = library.import_file(
            session, out.getvalue().encode(), "csv", actor="alice", source="upload.csv"
        )
        assert {e.status for e in entries} == {"pending"} and {e.source for e in entries} == {"upload.csv"}
        library.decide(session, [e.id for e in entries], approve=True, actor="bob")
        library.publish(session, actor="bob")
    with gateway.db.session() as session:
        exported_json = library.render_export(library.export_rows(session), "json", version=1)
        exported_csv = library.render_export(library.export_rows(session), "csv", version=1)
    doc = json.loads(exported_json)
    assert doc["version"] == 1 and len(doc["entries"]) == 3
    assert {(e["kind"], e["value"], e["admitted_by"], e["decided_by"]) for e in doc["entries"]} == {
        ("term", "词一", "alice", "bob"),
        ("allow", "词一寺", "alice", "bob"),
        ("pattern", r"kill\s+\w+", "alice", "bob"),
    }
    back = list(csv.DictReader(io.StringIO(exported_csv.decode())))
    assert {r["value"] for r in back} == {"词一", "词一寺", r"kill\s+\w+"}
    assert next(r for r in back if r["value"] == "词一")["admission_reason"] == "r1"
    # The export imports again (into another library it would be proposals; here they conflict).
    with gateway.db.session() as session, pytest.raises(Conflict):
        library.import_file(session, exported_json, "json", actor="carol", source="x")


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\xff\xfe\x00", "csv"),
        (b"not json", "json"),
        (b'{"entries": 3}', "json"),
        (b"a,b\n1,2\n", "csv"),
        (b"[]", "json"),
    ],
)
def test_dsp10_bad_library_files_are_refused(gateway: Gateway, data: bytes, fmt: str) -> None:
    with gateway.db.session() as session, pytest.raises(InvalidInput):
        library.import_file(session, data, fmt, actor="a", source="s")


def test_dsp10_new_version_takes_effect_without_restart_and_without_a_gap(gateway: Gateway) -> None:
    cache = new_library_cache()
    with gateway.db.session() as session:
        assert cache.get(session).scan("说坏词丙") == []
    publish_terms(gateway, ("term", "坏词丙", "A.1.8"))
    # Another thread holds the compile lock: requests keep screening with the old version …
    cache._lock.acquire()
    try:
        got: list[int] = []

        def worker() -> None:
            with gateway.db.session() as session:
                got.append(len(cache.get(session)))

        t = threading.Thread(target=worker)
        t.start()
        t.join(5)
        assert got == [0], "a request waited for, or skipped, screening during the reload"
    finally:
        cache._lock.release()
    # … and the next request after the compile screens with the new one.
    with gateway.db.session() as session:
        assert [f.category for f in cache.get(session).scan("说坏 词 丙")] == ["A.1.8"]


def test_dsp10_a_large_new_version_compiles_in_the_background_while_screening_goes_on(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.moderation import screener

    monkeypatch.setattr(screener, "BACKGROUND_COMPILE_ENTRIES", 0)
    cache = new_library_cache()
    publish_terms(gateway, ("term", "旧词", "A.1.8"))
    with gateway.db.session() as session:
        assert len(cache.get(session)) == 1  # the first compile is inline: nothing to fall back on
    publish_terms(gateway, ("term", "新词", "A.1.8"))
    with gateway.db.session() as session:
        assert len(cache.get(session)) == 1, "the request that noticed the version kept the old one"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with gateway.db.session() as session:
            if len(cache.get(session)) == 2:
                break
        time.sleep(0.05)
    with gateway.db.session() as session:
        assert [f.rule for f in cache.get(session).scan("说新词")]
