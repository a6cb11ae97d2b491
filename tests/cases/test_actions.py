"""Actions and their records: refutations with a page and feeds (DSP-11), reports to the authority
with a verifiable evidence bundle in an outbox (DSP-10, GAI-14), notices through real SMTP and
webhook servers on loopback, deadline reminders and escalation (DSP-12)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from synthgate import jobs
from synthgate.audit.bundle import verify_bundle
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.audit.models import AuditEvent
from synthgate.cases import service as cases
from synthgate.cases.delivery import signature
from synthgate.cases.models import Case, Notice
from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.web.console.cases import report
from tests.cases.conftest import complain_api, generate_image, picture
from tests.conftest import ServiceWithKey, free_port

ATOM = "{http://www.w3.org/2005/Atom}"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server (aiosmtpd) on loopback."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class Hooks:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200


@pytest.fixture
def webhook() -> Iterator[tuple[str, Hooks]]:
    """A real HTTP server on loopback that records what is posted to it."""
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(hooks.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", hooks
    finally:
        server.shutdown()
        server.server_close()


def _file_and_case(client: TestClient, gateway: Gateway, seed: int, **extra: Any) -> tuple[str, str]:
    produce_id, delivered = generate_image(gateway, "alice", picture(seed))
    response = complain_api(client, gateway, data=base64.b64encode(delivered).decode(), **extra)
    assert response.status_code == 201, response.text
    with gateway.db.session() as session:
        case_id = session.scalars(select(Case.id).where(Case.produce_id == produce_id)).one()
    return response.json()["tracking_number"], case_id


def _decide(gateway: Gateway, case_id: str, **extra: Any) -> cases.Outcome:
    with gateway.db.session() as session:
        return cases.decide(
            session,
            gateway.keys,
            gateway.settings,
            case_id,
            cases.DecisionInput(
                "violation", "DSP-11 false information", "A.1.7", "A staged flood picture.", **extra
            ),
            actor="operator:rita",
        )


def test_dsp11_refutation_is_published_on_a_page_and_in_atom_and_rss_feeds(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    number, case_id = _file_and_case(client, gateway, 21)
    _decide(
        gateway,
        case_id,
        refutation_title="No flood in Wuhan on 3 May",
        refutation_body="The picture circulating is AI-generated; the city reports no flooding.",
    )
    status = client.get(f"/v1/complaints/{number}").json()
    assert status["refutation"] and status["outcome"]["actions"] == ["refutation"]
    page = client.get(status["refutation"])
    assert page.status_code == 200 and "No flood in Wuhan" in page.text
    atom = ET.fromstring(client.get("/refutations/feed.atom").content)
    [entry] = atom.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "No flood in Wuhan on 3 May"
    assert entry.find(f"{ATOM}link").get("href").endswith(status["refutation"])  # type: ignore[union-attr]
    with gateway.db.session() as session:
        case = cases.get_case(session, case_id)
        assert entry.find(f"{ATOM}category").get("term") == case.produce_id  # type: ignore[union-attr]
    rss = ET.fromstring(client.get("/refutations/feed.rss").content)
    assert [i.findtext("title") for i in rss.iter("item")] == ["No flood in Wuhan on 3 May"]
    with gateway.db.session() as session:
        kinds = set(session.scalars(select(AuditEvent.event_type).where(AuditEvent.subject_id == case_id)))
    assert "case.action.refutation" in kinds


def test_gai14_dsp10_report_to_the_authority_with_a_verifiable_bundle_and_delivery_status(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey, webhook: tuple[str, Hooks]
) -> None:
    _, case_id = _file_and_case(client, gateway, 22)
    _decide(gateway, case_id, takedown=True, sanction=cases.SanctionInput("warned"))
    assert report(gateway, case_id, "operator:carla", "serious") == "delivered"
    folder = next((gateway.settings.data_dir / "authority-outbox").iterdir())
    filed = json.loads((folder / "report.json").read_text())
    assert filed["case"] == case_id and filed["decision"]["ground"] == "DSP-11 false information"
    assert {a["kind"] for a in filed["actions"]} == {"takedown", "sanction"}
    verifier = NoteVerifier(gateway.settings.audit_origin, gateway.keys.audit_signing_key.public_key())
    checked = verify_bundle((folder / "bundle.jsonl").read_bytes(), verifier)
    assert checked.ok, checked
    bundle_events = [json.loads(line) for line in (folder / "bundle.jsonl").read_text().splitlines()]
    types = {e["entry"]["type"] for e in bundle_events if e["kind"] == "leaf"}
    assert {"case.decided", "case.action.takedown", "provenance.taken_down"} <= types

    # Another transport that fails stays in the outbox as failed, and is delivered on retry.
    url, hooks = webhook
    hooks.status = 503
    http = gateway.settings.model_copy(update={"authority_transport": "http", "authority_url": url})
    jobs.integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        row = cases.authority_report(
            session, http, gateway.keys.audit_signing_key, case_id, actor="operator:carla"
        )
        report_id = row.id
    with gateway.db.session() as session:
        assert cases.deliver_report(session, http, report_id).status == "failed"
    hooks.status = 201
    with gateway.db.session() as session:
        delivered = cases.deliver_report(session, http, report_id)
        assert delivered.status == "delivered" and delivered.attempts == 2
    posted = json.loads(hooks.received[-1][1])
    assert posted["id"] == report_id and verify_bundle(posted["bundle"].encode(), verifier).ok
    with gateway.db.session() as session:
        figures = cases.period_counts(
            session, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        )
    assert figures["authority_reports"] == 2 and figures["sanctions"] == 1


def test_dsp12_gai15_notices_reach_the_complainant_by_smtp_and_the_user_by_signed_webhook(
    client: TestClient,
    gateway: Gateway,
    svc: ServiceWithKey,
    smtp: tuple[int, Inbox],
    webhook: tuple[str, Hooks],
    settings: Settings,
) -> None:
    port, inbox = smtp
    url, hooks = webhook
    configured = settings.model_copy(
        update={
            "smtp_port": port,
            "cases_webhook_url": url,
            "cases_notifiers": {"complainant": "smtp", "user": "webhook"},
        }
    )
    _, case_id = _file_and_case(client, gateway, 23, contact="witness@example.org")
    with gateway.db.session() as session:
        outcome = cases.decide(
            session,
            gateway.keys,
            configured,
            case_id,
            cases.DecisionInput("violation", "platform rules §4", "A.1.7", "Staged picture.", takedown=True),
            actor="operator:rita",
        )
    for notice_id in outcome.notices:
        with gateway.db.session() as session:
            assert cases.deliver_notice(session, gateway.keys, configured, notice_id).status == "sent"
    [mail] = inbox.messages
    assert mail["To"] == "witness@example.org" and "decided" in mail["Subject"]
    assert "Outcome: violation" in mail.get_payload()  # type: ignore[operator]
    [(headers, body)] = hooks.received
    assert headers["x-synthgate-signature"] == signature(gateway.keys.derive("case-webhook"), body)
    payload = json.loads(body)
    assert payload["recipient"] == "user" and "/appeals/" in payload["body"] and "token=" in payload["body"]
    # The appeal link in the notice works for that user.
    link = payload["body"].split(configured.public_base_url)[-1].split()[0]
    decision_id, token = link.split("/appeals/")[1].split("?token=")
    filed = client.post(
        f"/appeals/{decision_id}", data={"token": token, "grounds": "It is satire, clearly marked."}
    )
    assert filed.status_code == 200 and "appeal-filed" in filed.text
    # A notifier that cannot deliver leaves the notice failed, with the reason, for a retry.
    hooks.status = 500
    with gateway.db.session() as session:
        outcome2 = cases.decide_appeal(
            session,
            gateway.keys,
            configured,
            cases.appeals(session)[0].id,
            overturn=False,
            reasons="The label was cropped out.",
            actor="operator:sam",
        )
    statuses = []
    for notice_id in outcome2.notices:
        with gateway.db.session() as session:
            statuses.append(cases.deliver_notice(session, gateway.keys, configured, notice_id).status)
    assert statuses == ["failed", "sent"]
    with gateway.db.session() as session:
        failed = session.scalars(select(Notice).where(Notice.status == "failed")).one()
        assert "500" in (failed.last_error or "")


def test_dsp12_deadline_reminder_then_escalation_on_breach(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    _, case_id = _file_and_case(client, gateway, 24)
    with gateway.db.session() as session:
        due = cases.get_case(session, case_id).due_at
    due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
    with gateway.db.session() as session:
        assert cases.check_deadlines(session, gateway.settings, now=due - dt.timedelta(days=30)) == {
            "reminded": 0,
            "escalated": 0,
        }
    with gateway.db.session() as session:
        assert (
            cases.check_deadlines(session, gateway.settings, now=due - dt.timedelta(hours=2))["reminded"] == 1
        )
    with gateway.db.session() as session:
        assert (
            cases.check_deadlines(session, gateway.settings, now=due + dt.timedelta(minutes=1))["escalated"]
            == 1
        )
        assert (
            cases.check_deadlines(session, gateway.settings, now=due + dt.timedelta(hours=1))["escalated"]
            == 0
        )
    with gateway.db.session() as session:
        kinds = list(session.scalars(select(AuditEvent.event_type).where(AuditEvent.subject_id == case_id)))
    assert kinds.count("case.deadline_reminder") == 1 and kinds.count("case.deadline_breached") == 1
    # The job runs the same check from the scheduler's registry.
    assert "cases-deadlines" in jobs._JOBS


def test_dsp10_console_roles_auditor_reads_reviewer_decides(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey, login_as: Any
) -> None:
    _, case_id = _file_and_case(client, gateway, 25)
    auditor = login_as("auditor")
    assert client.get(f"/console/cases/{case_id}").status_code == 200
    form = {
        "csrf_token": auditor.csrf,
        "outcome": "no_violation",
        "ground": "g",
        "category": "A.1.7",
        "facts": "f",
    }
    assert client.post(f"/console/cases/{case_id}/decide", data=form).status_code == 403
    reviewer = login_as("reviewer")
    queue = client.get("/console/cases")
    assert queue.status_code == 200 and case_id[:8] in queue.text
    detail = client.get(f"/console/cases/{case_id}")
    assert "This picture spreads a false story" in detail.text  # the reviewer reads the complaint
    form["csrf_token"] = reviewer.csrf
    decided = client.post(
        f"/console/cases/{case_id}/decide", data={**form, "takedown": "1"}, follow_redirects=False
    )
    assert decided.status_code == 422  # no action follows "no violation"
    decided = client.post(f"/console/cases/{case_id}/decide", data=form, follow_redirects=False)
    assert decided.status_code == 303
    report_form = {"csrf_token": reviewer.csrf, "note": "x"}
    assert client.post(f"/console/cases/{case_id}/report", data=report_form).status_code == 403
    with gateway.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "case.decided")).one()
        assert event.actor == "operator:reviewer-op"
    assert client.get("/console/outbox").status_code == 403  # reviewers do not see the outbox


def test_dsp10_reviewer_links_a_url_complaint_to_its_generation_in_the_console(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey, login_as: Any
) -> None:
    produce_id, _ = generate_image(gateway, "alice", picture(26))
    filed = complain_api(client, gateway, url="https://video.example.cn/v/123", category="deepfake")
    assert filed.status_code == 201, filed.text
    with gateway.db.session() as session:
        case_id = session.scalars(select(Case.id)).one()
        assert cases.get_case(session, case_id).produce_id is None  # a URL is not fetched
    reviewer = login_as("reviewer")
    bad = client.post(
        f"/console/cases/{case_id}/link", data={"csrf_token": reviewer.csrf, "produce_id": "0" * 26}
    )
    assert bad.status_code == 404
    linked = client.post(
        f"/console/cases/{case_id}/link",
        data={"csrf_token": reviewer.csrf, "produce_id": produce_id},
        follow_redirects=False,
    )
    assert linked.status_code == 303
    assigned = client.post(
        f"/console/cases/{case_id}/assign",
        data={"csrf_token": reviewer.csrf, "assignee": ""},
        follow_redirects=False,
    )
    assert assigned.status_code == 303
    with gateway.db.session() as session:
        case = cases.get_case(session, case_id)
        assert (
            case.produce_id == produce_id and case.account_id and case.assigned_to == "operator:reviewer-op"
        )
        kinds = list(session.scalars(select(AuditEvent.event_type).where(AuditEvent.subject_id == case_id)))
    assert {"case.linked", "case.assigned"} <= set(kinds)
    page = client.get(f"/console/cases/{case_id}")
    assert produce_id in page.text and "reviewer" in page.text
