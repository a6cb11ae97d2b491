"""Transparency figures per period, their exports (CSV, JSON, PDF read back by pypdf), the CLI and
the public page; sources that are not installed show as unavailable, never as zero."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.config import Settings
from synthgate.db import utcnow
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.errors import InvalidInput, Refused
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance import transparency
from synthgate.identity import service as identity
from tests.conftest import ServiceWithKey, ready_user, server_env


def _activity(gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey) -> None:
    """Three generations, two refusals (blocked input), one sanction, one suspension."""
    ready_user(gateway, sms, chat.service)
    for prompt in ("一", "二", "三"):
        ticket = gateway.check("chat", "u1", prompt=prompt)
        gateway.complete("chat", ticket.ticket_id, output=f"answer {prompt}")
    for _ in range(2):
        with pytest.raises(Refused):
            gateway.check("chat", "u1", prompt="tell me the forbidden-term")
    with gateway.db.session() as session:
        account = identity.get_account(session, chat.service, "u1")
        identity.set_status(session, account, "warned", reason="spam", operator="operator:rev")
        governance.suspend(session, governance.get_service(session, "chat"), reason="drill", actor="t")


def _today() -> dt.date:
    return utcnow().date()


def test_transparency_figures_per_period(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _activity(gateway, sms, chat)
    # While the cases domain has no read function, its figures are unavailable, not zero.
    monkeypatch.setitem(sys.modules, "synthgate.cases.service", None)
    with gateway.db.session() as session:
        figures = transparency.compute(session, _today() - dt.timedelta(days=6), _today())
        earlier = transparency.compute(session, dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    sections = figures.sections
    assert sections["generations"] is not None and sections["generations"]["total"] == 3
    assert sections["generations"]["by_medium"] == {"text": 3}
    assert sections["generations"]["by_day"] == {_today().isoformat(): 3}
    assert sections["refusals"] == {"total": 2, "by_reason": {"moderation.blocked": 2}}
    assert sections["sanctions"] is not None and sections["sanctions"]["by_type"]["warned"] == 1
    assert sections["governance"] is not None and sections["governance"]["suspensions"] == 1
    assert sections["cases"] is None
    assert figures.as_dict()["sections"]["cases"] == "unavailable"
    assert ("cases", "", "unavailable") in list(figures.rows())
    # Another period counts nothing of it.
    assert earlier.sections["generations"] == {"total": 0, "by_medium": {}, "by_operation": {}, "by_day": {}}

    # Once the cases domain answers, its figures are part of the report as given.
    fake = types.ModuleType("synthgate.cases.service")
    fake.period_counts = lambda session, start, end: {  # type: ignore[attr-defined]
        "complaints": {"received": 4, "handled": 3, "within_deadline": 3},
        "takedowns": 1,
        "appeals": {"filed": 1, "reversed": 1},
        "authority_reports": 1,
    }
    monkeypatch.setitem(sys.modules, "synthgate.cases.service", fake)
    with gateway.db.session() as session:
        with_cases = transparency.compute(session, _today(), _today())
    assert with_cases.sections["cases"] is not None
    assert ("cases", "appeals.reversed", "1") in list(with_cases.rows())

    with pytest.raises(InvalidInput):
        transparency.parse_period("2026-02-01", "2026-01-01")
    with pytest.raises(InvalidInput):
        transparency.parse_period("yesterday", None)


def test_transparency_exports_csv_json_pdf_read_back(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _activity(gateway, sms, chat)
    monkeypatch.setitem(sys.modules, "synthgate.cases.service", None)
    with gateway.db.session() as session:
        figures = transparency.compute(session, _today() - dt.timedelta(days=1), _today())
    rows = list(csv.DictReader(io.StringIO(transparency.to_csv(figures).decode("utf-8-sig"))))
    assert {"section": "refusals", "figure": "by_reason.moderation.blocked", "value": "2"}.items() <= rows[
        [r["figure"] for r in rows].index("by_reason.moderation.blocked")
    ].items()
    assert any(r["section"] == "cases" and r["value"] == "unavailable" for r in rows)
    loaded = json.loads(transparency.to_json(figures))
    assert loaded["sections"]["generations"]["total"] == 3 and loaded["sections"]["cases"] == "unavailable"

    pdf = transparency.to_pdf(figures)
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "透明度报告" in text  # the CJK font is embedded and extractable
    assert "by_reason.moderation.blocked" in text and "moderation.blocked" in text
    assert "unavailable" in text
    assert reader.metadata is not None and reader.metadata.title == "Transparency report / 透明度报告"
    # The SVG chart is well-formed XML with escaped labels.
    import xml.etree.ElementTree as ET

    svg = transparency.bar_chart_svg([("<script>", 3), ("ok", 1)], title="t & <t>")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "<script>" not in svg


def test_transparency_cli_export_with_help(
    settings: Settings, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, tmp_path: Path
) -> None:
    _activity(gateway, sms, chat)

    def sg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "synthgate", *args],
            env=server_env(settings, COLUMNS="200"),
            capture_output=True,
            text=True,
            timeout=120,
        )

    helped = sg("transparency", "export", "--help")
    assert helped.returncode == 0 and "--from" in helped.stdout and "pdf" in helped.stdout
    today = _today().isoformat()
    out = tmp_path / "report.pdf"
    made = sg("transparency", "export", "--from", today, "--to", today, "-o", str(out))
    assert made.returncode == 0, made.stderr
    text = PdfReader(str(out)).pages[0].extract_text()
    assert "moderation.blocked" in text
    as_json = sg("transparency", "export", "--from", today, "--to", today, "--format", "json")
    assert json.loads(as_json.stdout)["sections"]["refusals"]["total"] == 2
    bad = sg("transparency", "export", "--from", "2026-13-01", "--format", "csv")
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
    bad_format = sg("transparency", "export", "--format", "docx")
    assert bad_format.returncode != 0 and "format" in bad_format.stderr
    with gateway.db.session() as session:
        exported = list(
            session.scalars(select(AuditEvent).where(AuditEvent.event_type == "transparency.exported"))
        )
    assert [e.data["format"] for e in exported] == ["pdf", "json"]
    due = sg("filings", "due", "--json")
    assert due.returncode == 0 and json.loads(due.stdout) == []


def test_transparency_public_page_and_downloads(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    _activity(gateway, sms, chat)
    page = client.get("/transparency")
    assert page.status_code == 200
    assert "<svg" in page.text and "Refusals by reason" in page.text
    assert "moderation.blocked" in page.text
    # Nothing about individual users is published: no account ids, no user names.
    with gateway.db.session() as session:
        account = identity.get_account(session, chat.service, "u1")
        assert account.id not in page.text
    month = f"{_today().year:04d}-{_today().month:02d}"
    pdf = client.get(f"/transparency/export.pdf?month={month}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "moderation.blocked" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert client.get("/transparency/export.csv").status_code == 200
    assert client.get("/transparency/export.exe").status_code == 422
    assert client.get("/transparency?month=2999-01").status_code == 422
    assert client.get("/transparency?month=garbage").status_code == 422
