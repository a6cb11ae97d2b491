"""Algorithm filings (DSP-19, ALG-24), change and cancellation deadlines in working days, DSP-7
records, labeling materials (LM-12), evidence files."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.db import utcnow
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.errors import Conflict, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.governance.workdays import CHINA_TZ, WorkCalendar
from tests.conftest import ServiceWithKey, ready_user
from tests.governance.helpers import ITEMS, draft_algorithm, filed_algorithm, pdf_bytes, png_bytes


def _events(gateway: Gateway, event_type: str) -> list[AuditEvent]:
    with gateway.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)))


def test_dsp19_workdays_follow_the_official_holiday_calendar() -> None:
    calendar = WorkCalendar()
    # 2026: Mid-autumn 25-27 September and National Day 1-7 October are holidays; Sunday 20
    # September and Saturday 10 October are worked in lieu (State Council notice for 2026).
    assert not calendar.is_workday(dt.date(2026, 10, 1)) and not calendar.is_workday(dt.date(2026, 9, 25))
    assert calendar.is_workday(dt.date(2026, 9, 20)) is True  # a Sunday, worked in lieu
    # Ten working days after Monday 28 September 2026: 29, 30 Sep, (holiday 1-7 Oct), 8, 9, 10 (Sat,
    # worked), 12, 13, 14, 15, 16 Oct.
    assert calendar.add_workdays(dt.date(2026, 9, 28), 10) == dt.date(2026, 10, 16)
    # A plain weekday count would say 12 October: the holiday calendar matters.
    assert calendar.workdays_between(dt.date(2026, 9, 28), dt.date(2026, 10, 16)) == 10
    # Past the published data, weekdays are assumed and the day is flagged as not covered.
    assert not calendar.covered(dt.date(2027, 1, 4)) and calendar.is_workday(dt.date(2027, 1, 4))
    # Operators can add a local holiday.
    local = WorkCalendar(extra_holidays=[dt.date(2026, 10, 12)])
    assert local.add_workdays(dt.date(2026, 9, 28), 10) == dt.date(2026, 10, 19)
    # A deadline ends at midnight Beijing time; a UTC evening is already the next day in Beijing.
    late_utc = dt.datetime(2026, 9, 27, 17, 0, tzinfo=dt.UTC)  # 01:00 on 28 Sep in Beijing
    due = calendar.due_after(late_utc, 10)
    assert due.astimezone(CHINA_TZ) == dt.datetime(2026, 10, 17, tzinfo=CHINA_TZ)


def test_alg24_filing_needs_every_item_and_lm12_materials(gateway: Gateway) -> None:
    settings = gateway.settings
    with gateway.db.session() as session:
        algorithm = draft_algorithm(session, public_content="")
        with pytest.raises(InvalidInput, match="public_content"):
            governance.record_filing(
                session, algorithm, filing_number="N-1", filing_link="https://beian.example.cn/1", actor="t"
            )
        with pytest.raises(InvalidInput, match="algorithm type"):
            governance.update_algorithm(session, algorithm, {"algorithm_type": "magic"}, actor="t")
        governance.update_algorithm(
            session, algorithm, {"public_content": ITEMS["public_content"]}, actor="t"
        )
        with pytest.raises(Conflict, match="LM-12"):
            governance.record_filing(
                session, algorithm, filing_number="N-1", filing_link="https://beian.example.cn/1", actor="t"
            )
        governance.add_labeling_material(
            session, settings, algorithm, title="Labels", description="how we label", actor="t"
        )
        with pytest.raises(InvalidInput, match="http"):
            governance.record_filing(
                session, algorithm, filing_number="N-1", filing_link="javascript:alert(1)", actor="t"
            )
        governance.record_filing(
            session, algorithm, filing_number="N-1", filing_link="https://beian.example.cn/1", actor="t"
        )
        assert algorithm.status == "filed" and algorithm.filing_number == "N-1"
        materials = governance.list_materials(session, algorithm)
        # The material records the labeling method in force when it was made.
        assert materials[0].configuration["text_label"] == settings.label_text
    assert [e.data["filing_number"] for e in _events(gateway, "algorithm.filed")] == ["N-1"]


def test_dsp19_filing_number_and_link_come_from_the_linked_algorithm(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings, number="网信算备110108000000009990001")
        service = session.get(Service, chat.service.id)
        assert service is not None
        governance.link_service(session, service, algorithm, actor="t")
    ready_user(gateway, sms, chat.service)
    checked = client.post("/v1/generations", json={"user": "u1", "input": "写一首诗"}, headers=chat.headers)
    assert checked.status_code == 201, checked.text
    assert checked.json()["filing"] == {
        "number": "网信算备110108000000009990001",
        "link": "https://beian.example.cn/notice/网信算备110108000000009990001",
    }
    page = client.get("/rules/chat")
    assert "网信算备110108000000009990001" in page.text
    home = client.get("/")
    assert "网信算备110108000000009990001" in home.text
    public = client.get("/transparency")
    assert public.status_code == 200 and "网信算备110108000000009990001" in public.text
    assert _events(gateway, "service.algorithm_linked")
    with gateway.db.session() as session:
        governance.link_service(session, governance.get_service(session, "chat"), None, actor="t")
    unlinked = client.post("/v1/generations", json={"user": "u1", "input": "写一首诗"}, headers=chat.headers)
    assert unlinked.json()["filing"] == {"number": None, "link": None}


def test_dsp19_change_due_in_10_workdays_cancellation_in_20(gateway: Gateway) -> None:
    before_holiday = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Beijing
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings)
        change = governance.record_change(
            session, algorithm, description="new training data", actor="t", occurred_at=before_holiday
        )
        assert change.due_at.astimezone(CHINA_TZ).date() == dt.date(2026, 10, 17)  # end of 16 Oct
        assert not change.due_provisional
        # Twenty working days from 14 December 2026 reach into 2027, past the published calendar:
        # weekdays are assumed (New Year's Day, a fixed statutory holiday, still counts as one), and
        # the deadline is marked provisional.
        stop = governance.stop_algorithm(
            session,
            algorithm,
            reason="service closes",
            actor="t",
            occurred_at=dt.datetime(2026, 12, 14, 2, 0, tzinfo=dt.UTC),
        )
        assert stop.due_provisional
        assert stop.due_at.astimezone(CHINA_TZ).date() == dt.date(2027, 1, 13)  # end of 12 January
        with pytest.raises(Conflict):
            governance.stop_algorithm(session, algorithm, reason="again", actor="t")
        # Reminders: the change is overdue at 20 Oct; the cancellation is not yet due.
        sent = governance.send_filing_reminders(session, now=dt.datetime(2026, 10, 20, tzinfo=dt.UTC))
        assert [(r.obligation.kind, r.overdue) for r in sent] == [("change", True)]
        assert governance.send_filing_reminders(session, now=dt.datetime(2026, 10, 20, tzinfo=dt.UTC)) == []
        done = governance.complete_obligation(session, change.id, reference="CHG-1", actor="t")
        assert done.filed_at is not None
        governance.complete_obligation(session, stop.id, reference="CXL-1", actor="t")
        assert algorithm.status == "cancelled"
        with pytest.raises(Conflict):
            governance.add_version(session, algorithm, version="9", models=["m"], biometric=False, actor="t")
    overdue = _events(gateway, "filing.overdue")
    assert len(overdue) == 1 and overdue[0].data["kind"] == "change"
    filed = [e.data for e in _events(gateway, "filing.obligation_filed")]
    assert {d["kind"] for d in filed} == {"change", "cancellation"}


def test_dsp19_new_version_of_filed_algorithm_opens_a_change_filing(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings)
        governance.add_version(
            session, algorithm, version="2.0", models=["img-2"], biometric=False, actor="t"
        )
        open_items = governance.list_obligations(session, algorithm=algorithm, open_only=True)
        assert [o.kind for o in open_items] == ["change"] and "2.0" in open_items[0].description
        reminders = governance.due_filings(session)
        assert reminders and reminders[0].workdays_left >= 9


def test_dsp7_every_management_system_is_a_record_with_owner_date_and_evidence(gateway: Gateway) -> None:
    settings = gateway.settings
    with gateway.db.session() as session:
        assert governance.missing_record_types(session) == list(governance.RECORD_TYPES)
        algorithm = draft_algorithm(session)
        for record_type in governance.RECORD_TYPES:
            record = governance.create_record(
                session,
                record_type=record_type,
                title=f"{record_type} policy",
                owner="Compliance department",
                effective_on=dt.date(2026, 11, 1),
                actor="t",
                body="The policy text.",
                algorithm_id=algorithm.id,
            )
            governance.add_evidence(
                session,
                settings,
                owner_type="record",
                owner_id=record.id,
                filename=f"{record_type}.pdf",
                data=pdf_bytes(record_type),
                actor="t",
            )
        assert governance.missing_record_types(session) == []
        assert len(governance.list_records(session, algorithm_id=algorithm.id)) == 8
        with pytest.raises(InvalidInput, match="record type"):
            governance.create_record(
                session,
                record_type="astrology",
                title="x",
                owner="y",
                effective_on=dt.date.today(),
                actor="t",
            )
        with pytest.raises(InvalidInput, match="owner"):
            governance.create_record(
                session,
                record_type="anti_fraud",
                title="x",
                owner=" ",
                effective_on=dt.date.today(),
                actor="t",
            )
    assert len(_events(gateway, "management_record.created")) == 8
    assert len(_events(gateway, "evidence.added")) == 8


def test_dsp15_evidence_is_sniffed_limited_and_read_back_intact(gateway: Gateway) -> None:
    settings = gateway.settings
    with gateway.db.session() as session:
        algorithm = draft_algorithm(session)
        owner = {"owner_type": "algorithm", "owner_id": algorithm.id, "actor": "t"}
        with pytest.raises(InvalidInput, match="content is png"):
            governance.add_evidence(session, settings, filename="report.pdf", data=png_bytes(), **owner)
        with pytest.raises(InvalidInput, match="not an accepted"):
            governance.add_evidence(
                session, settings, filename="x.bin", data=b"\x00\x01\x02\x03" * 10, **owner
            )
        with pytest.raises(InvalidInput, match="empty"):
            governance.add_evidence(session, settings, filename="x.pdf", data=b"", **owner)
        with pytest.raises(InvalidInput, match="at most"):
            governance.add_evidence(
                session, settings, filename="big.txt", data=b"a" * (settings.evidence_max_bytes + 1), **owner
            )
        report = pdf_bytes()
        stored = governance.add_evidence(
            session, settings, filename="../../etc/报告.pdf", data=report, **owner
        )
        assert stored.filename == "报告.pdf" and stored.kind == "pdf"
        evidence_id = stored.id
    with gateway.db.session() as session:
        row, data = governance.read_evidence(session, settings, evidence_id)
        assert data == report
        assert "assessment report" in PdfReader(io.BytesIO(data)).pages[0].extract_text()
    # A stored file altered on disk is detected on reading.
    path = settings.blob_dir / "governance" / row.sha256[:2] / row.sha256
    path.write_bytes(path.read_bytes() + b"tampered")
    with gateway.db.session() as session, pytest.raises(ValueError, match="altered"):
        governance.read_evidence(session, settings, evidence_id)


def test_dsp19_launch_before_filing_is_due_in_10_workdays(gateway: Gateway) -> None:
    launched = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)
    with gateway.db.session() as session:
        algorithm = draft_algorithm(session)
        with pytest.raises(InvalidInput, match="future"):
            governance.record_launch(
                session, algorithm, launched_at=utcnow() + dt.timedelta(days=1), actor="t"
            )
        launch = governance.record_launch(session, algorithm, launched_at=launched, actor="t")
        assert launch.due_at.astimezone(CHINA_TZ).date() == dt.date(2026, 10, 17)
        with pytest.raises(Conflict, match="already"):
            governance.record_launch(session, algorithm, launched_at=launched, actor="t")
        governance.add_labeling_material(
            session, gateway.settings, algorithm, title="Labels", description="how", actor="t"
        )
        governance.record_filing(
            session, algorithm, filing_number="N-9", filing_link="https://beian.example.cn/9", actor="t"
        )
        # Filing closes the launch obligation, late here (the filing is recorded after 16 October).
        assert launch.filed_at is not None and launch.reference == "N-9"
        assert governance.list_obligations(session, algorithm=algorithm, open_only=True) == []
