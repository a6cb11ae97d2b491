"""Governance and transparency console pages: roles on every route, every action audited, bad
input a clear 4xx with nothing stored."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select

from synthgate.audit.models import AuditEvent
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Algorithm, Assessment, EvidenceFile, ManagementRecord
from tests.conftest import ServiceWithKey
from tests.governance.helpers import ITEMS, pdf_bytes, png_bytes
from tests.web.conftest import LoggedIn

Login = Callable[[str], LoggedIn]


def _events(gateway: Gateway, prefix: str) -> list[AuditEvent]:
    with gateway.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.event_type.like(prefix + "%")).order_by(AuditEvent.id)
            )
        )


def _post(client: TestClient, who: LoggedIn, path: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": who.csrf}, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def test_dsp19_alg24_lm12_console_files_an_algorithm_end_to_end(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey, login_as: Login
) -> None:
    compliance = login_as("compliance")
    created = _post(client, compliance, "/console/governance/algorithms", {"name": "图像生成", **ITEMS})
    assert created.status_code == 303, created.text
    algorithm_url = created.headers["location"]
    algorithm_id = algorithm_url.rsplit("/", 1)[-1]
    page = client.get(algorithm_url)
    assert page.status_code == 200 and "图像生成" in page.text and "ALG-24" in page.text

    # It went live before filing: the launch filing is then due within 10 working days.
    no_time = _post(client, compliance, f"/console/governance/algorithms/{algorithm_id}/launch", {})
    assert no_time.status_code == 422
    launched = _post(
        client,
        compliance,
        f"/console/governance/algorithms/{algorithm_id}/launch",
        {"launched_at": "2026-11-02T09:00"},
    )
    assert launched.status_code == 303
    assert "file the algorithm after launch" in client.get("/console/governance").text

    # Filing without labeling materials is refused with a clear 409, nothing changes.
    refused = _post(
        client,
        compliance,
        f"/console/governance/algorithms/{algorithm_id}/file",
        {"filing_number": "网信算备-1", "filing_link": "https://beian.example.cn/1"},
    )
    assert refused.status_code == 409 and "LM-12" in refused.text
    material = _post(
        client,
        compliance,
        f"/console/governance/algorithms/{algorithm_id}/materials",
        {"title": "Labels", "description": "人工智能生成 at the end; AIGC metadata."},
    )
    assert material.status_code == 303
    filed = _post(
        client,
        compliance,
        f"/console/governance/algorithms/{algorithm_id}/file",
        {"filing_number": "网信算备-1", "filing_link": "https://beian.example.cn/1"},
    )
    assert filed.status_code == 303
    linked = _post(
        client, compliance, f"/console/governance/algorithms/{algorithm_id}/link", {"service": "chat"}
    )
    assert linked.status_code == 303
    assert "网信算备-1" in client.get("/rules/chat").text

    # Upload a report: a PNG named .pdf is refused (422), a real PDF is stored and downloads intact.
    fake = client.post(
        "/console/governance/evidence",
        data={"owner_type": "algorithm", "owner_id": algorithm_id, "csrf_token": compliance.csrf},
        files={"file": ("self-assessment.pdf", png_bytes(), "application/pdf")},
        follow_redirects=False,
    )
    assert fake.status_code == 422 and "content is png" in fake.text
    report = pdf_bytes("self assessment")
    stored = client.post(
        "/console/governance/evidence",
        data={"owner_type": "algorithm", "owner_id": algorithm_id, "csrf_token": compliance.csrf},
        files={"file": ("自评估报告.pdf", report, "application/pdf")},
        follow_redirects=False,
    )
    assert stored.status_code == 303
    page = client.get(algorithm_url).text
    evidence_id = re.search(r"/console/governance/evidence/([0-9a-f]{32})", page)
    assert evidence_id
    download = client.get(f"/console/governance/evidence/{evidence_id.group(1)}")
    assert download.status_code == 200 and download.content == report
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "self assessment" in PdfReader(io.BytesIO(download.content)).pages[0].extract_text()

    # A version and a change: the due filing shows on the overview with working days left.
    version = _post(
        client,
        compliance,
        f"/console/governance/algorithms/{algorithm_id}/versions",
        {"version": "2.0", "models": "img-2, img-2-fast", "biometric": "on"},
    )
    assert version.status_code == 303
    overview = client.get("/console/governance")
    assert overview.status_code == 200 and "new model version 2.0" in overview.text

    types = [e.event_type for e in _events(gateway, "")]
    for expected in (
        "algorithm.created",
        "labeling_material.added",
        "algorithm.filed",
        "service.algorithm_linked",
        "evidence.added",
        "algorithm.version_added",
        "filing.obligation_opened",
    ):
        assert expected in types, expected
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(EvidenceFile)) == 1


def test_dsp15_dsp20_console_assessment_needs_evidence_then_sign_off(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey, login_as: Login
) -> None:
    compliance = login_as("compliance")
    declared = _post(
        client,
        compliance,
        "/console/governance/functions",
        {"service": "chat", "operation": "news.rewrite", "title": "News", "public_facing": "on"},
    )
    assert declared.status_code == 303
    with gateway.db.session() as session:
        function_id = governance.list_functions(session)[0].id
    opened = _post(
        client,
        compliance,
        "/console/governance/assessments",
        {"kind": "security", "title": "News rewriting launch review", "target": f"function:{function_id}"},
    )
    assert opened.status_code == 303
    url = opened.headers["location"]
    assessment_id = url.rsplit("/", 1)[-1]
    sign = {"result": "passed", "conclusion": "ok", "signed_on": "2026-11-20"}
    early = _post(client, compliance, f"{url}/sign-off", sign)
    assert early.status_code == 409 and "evidence" in early.text
    client.post(
        "/console/governance/evidence",
        data={"owner_type": "assessment", "owner_id": assessment_id, "csrf_token": compliance.csrf},
        files={"file": ("results.txt", "测试结果：通过".encode(), "text/plain")},
    )
    future = _post(client, compliance, f"{url}/sign-off", {**sign, "signed_on": "2999-01-01"})
    assert future.status_code == 422
    done = _post(client, compliance, f"{url}/sign-off", sign)
    assert done.status_code == 303
    page = client.get(url).text
    assert "passed" in page and "compliance-op" in page and "2026-11-20" in page
    with gateway.db.session() as session:
        assessment = session.get(Assessment, assessment_id)
        assert assessment is not None and assessment.signed_off_by == "operator:compliance-op"
    signed = _events(gateway, "assessment.signed_off")
    assert len(signed) == 1 and signed[0].actor == "operator:compliance-op"


def test_dsp7_console_records_and_roles(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey, login_as: Login
) -> None:
    compliance = login_as("compliance")
    made = _post(
        client,
        compliance,
        "/console/governance/records",
        {
            "record_type": "emergency_response",
            "title": "应急预案",
            "owner": "Security team",
            "effective_on": "2026-11-01",
            "body": "Plan",
        },
    )
    assert made.status_code == 303
    bad = _post(
        client,
        compliance,
        "/console/governance/records",
        {"record_type": "emergency_response", "title": "x", "owner": "y", "effective_on": "soon"},
    )
    assert bad.status_code == 422
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ManagementRecord)) == 1
    assert "应急预案" in client.get("/console/governance/records").text

    # The auditor reads everything and changes nothing.
    auditor = login_as("auditor")
    for path in (
        "/console/governance",
        "/console/governance/records",
        "/console/governance/assessments",
        "/console/transparency",
    ):
        assert client.get(path).status_code == 200, path
    assert "Governance" in client.get("/console").text
    denied = _post(client, auditor, "/console/governance/algorithms", {"name": "x"})
    assert denied.status_code == 403
    denied = _post(client, auditor, "/console/governance/suspensions", {"service": "chat", "reason": "x"})
    assert denied.status_code == 403
    # A reviewer has no business with filings.
    login_as("reviewer")
    assert client.get("/console/governance").status_code == 403
    assert client.get("/console/transparency").status_code == 403
    # No session: the login page; a form without CSRF token: refused.
    client.cookies.clear()
    assert client.get("/console/governance", follow_redirects=False).status_code == 303
    admin = login_as("admin")
    no_csrf = client.post("/console/governance/algorithms", data={"name": "x"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Algorithm)) == 0
    assert admin.role == "admin"


def test_gai14_console_suspension_and_transparency_exports(
    client: TestClient, gateway: Gateway, chat: ServiceWithKey, login_as: Login
) -> None:
    compliance = login_as("compliance")
    bad = _post(
        client,
        compliance,
        "/console/governance/suspensions",
        {"service": "chat", "feature": "Not A Feature!", "reason": "x"},
    )
    assert bad.status_code == 422
    made = _post(
        client,
        compliance,
        "/console/governance/suspensions",
        {"service": "chat", "feature": "medium:image", "reason": "incident"},
    )
    assert made.status_code == 303
    page = client.get("/console/governance").text
    suspension_id = re.search(r"/console/governance/suspensions/([0-9a-f]{32})/lift", page)
    assert suspension_id and "incident" in page
    assert (
        _post(
            client, compliance, f"/console/governance/suspensions/{suspension_id.group(1)}/lift", {}
        ).status_code
        == 303
    )
    assert (
        _post(
            client, compliance, f"/console/governance/suspensions/{suspension_id.group(1)}/lift", {}
        ).status_code
        == 409
    )

    dashboard = client.get("/console/transparency")
    assert dashboard.status_code == 200 and "suspensions" in dashboard.text
    assert client.get("/console/transparency?start=2026-02-01&end=2026-01-01").status_code == 422
    csv_export = client.get("/console/transparency/export.csv")
    assert csv_export.status_code == 200 and "governance,suspensions,1" in csv_export.content.decode(
        "utf-8-sig"
    )
    pdf = client.get("/console/transparency/export.pdf")
    assert pdf.status_code == 200 and PdfReader(io.BytesIO(pdf.content)).pages
    assert client.get("/console/transparency/export.xml").status_code == 422
    exported = _events(gateway, "transparency.exported")
    assert [e.data["format"] for e in exported] == ["csv", "pdf"] and exported[
        0
    ].actor == "operator:compliance-op"
    assert [e.event_type for e in _events(gateway, "service.susp")] == [
        "service.suspended",
        "service.suspension_lifted",
    ]
