"""Issue 8, done when: in a real headless Chromium against a real ``synthgate serve`` process, a
member of the public files a complaint about a generated image; a reviewer decides it; the image is
taken down and its hash blocks a new generation of the same image; the complainant's status page
shows the outcome within the deadline; the user appeals (from the link in their notice); a second
reviewer overturns; everything is in the audit log and in the transparency figures."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.cases import service as cases
from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.provenance import service as provenance
from tests.cases.conftest import picture, server_env_for_cases
from tests.cases.test_actions import Hooks
from tests.cases.test_actions import webhook as webhook
from tests.conftest import LiveServer, make_service, ready_user, start_server, stop
from tests.web.conftest import make_operator

pytestmark = pytest.mark.browser


@pytest.fixture
def server(settings: Settings, webhook: tuple[str, Hooks]) -> Iterator[LiveServer]:
    url, _ = webhook
    env = server_env_for_cases(
        SYNTHGATE_CASES_NOTIFIERS=json.dumps({"complainant": "log", "user": "webhook"}),
        SYNTHGATE_CASES_WEBHOOK_URL=url,
    )
    live = start_server(settings, **env)
    yield live
    stop(live.process)


def _generate(base: str, key: str, user: str, image: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    checked = httpx.post(
        f"{base}/v1/generations",
        json={"user": user, "input": "a flooded street", "medium": "image"},
        headers=headers,
        timeout=60,
    )
    assert checked.status_code == 201, checked.text
    return httpx.post(
        f"{base}/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"media": [{"data": base64.b64encode(image).decode()}]},
        headers=headers,
        timeout=60,
    )


def _login(page: Any, base: str, username: str, password: str, target: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}{target}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{target}")


def test_dsp10_dsp12_gai14_gai15_complaint_takedown_appeal_overturn_end_to_end(
    server: LiveServer,
    browser: Any,
    webhook: tuple[str, Hooks],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    base = server.url
    _, hooks = webhook
    gateway = Gateway(server.settings)
    try:
        rita = make_operator(gateway, "rita", "reviewer")
        sam = make_operator(gateway, "sam", "reviewer")
        studio = make_service(gateway, "studio")
        from synthgate.devtools.demo import CapturingSmsSender

        sms = CapturingSmsSender()
        ready_user(gateway, sms, studio.service, "alice")
        ready_user(gateway, sms, studio.service, "bob")
    finally:
        gateway.close()
    image = picture(31, (240, 180))
    generated = _generate(base, studio.key, "alice", image)
    assert generated.status_code == 200, generated.text
    produce_id = generated.json()["produce_id"]
    found = tmp_path / "found-online.png"
    found.write_bytes(base64.b64decode(generated.json()["media"][0]["data"]))
    started = dt.datetime.now(dt.UTC)

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        # 1. A member of the public files a complaint with the picture they found.
        page.goto(f"{base}/complaints")
        expect(page.locator("#process")).to_contain_text("working days")
        page.select_option("#category", "rumour")
        page.fill("#description", "This picture of a flooded street is fake and spreads as news.")
        page.set_input_files("#file", str(found))
        time.sleep(1.1)  # a person takes a moment; the form refuses instant submissions
        page.get_by_role("button", name="Send complaint").click()
        expect(page.locator("#acknowledgement")).to_be_visible()
        tracking = page.locator("#tracking-number").inner_text().strip()
        assert tracking.startswith("SG-")
        expect(page.locator("#deadline")).to_contain_text("UTC")
        page.screenshot(path=str(tmp_path / "01-acknowledged.png"))
        page.locator("#status-link").click()
        expect(page.locator("#status")).to_have_text("open")

        # 2. A reviewer finds the case in the queue, linked to the generation, and decides it.
        console = context.new_page()
        console.set_default_timeout(20_000)
        _login(console, base, "rita", rita, "/console/cases")
        row = console.locator("#cases tbody tr").filter(has_text=produce_id)
        expect(row).to_have_count(1)
        row.locator("a").first.click()
        expect(console.locator("#links")).to_contain_text(produce_id)
        expect(console.locator("#complaints")).to_contain_text("flooded street is fake")
        console.get_by_label("Violation", exact=True).check()
        console.fill("#ground", "DSP-11; platform rules §4: false information")
        console.select_option("#category", "A.1.7")
        console.fill("#facts", "A generated picture of a flood that did not happen, spread as news.")
        console.check("#takedown")
        console.select_option("#sanction", "restricted")
        console.fill("#restrictions", "generate")
        console.get_by_role("button", name="Submit decision").click()
        expect(console.locator(".flash.ok")).to_contain_text("Decided: violation")
        expect(console.locator("#case-status")).to_have_text("decided")
        console.screenshot(path=str(tmp_path / "02-decided.png"))

        # 3. Taken down, and its hash blocks a new generation of the same picture (by another user).
        blocked = _generate(base, studio.key, "bob", image)
        assert blocked.status_code == 403, blocked.text
        assert blocked.json()["error"]["reason"] == "moderation.blocked"
        with httpx.Client(base_url=base) as api:
            status = api.get(f"/v1/complaints/{tracking}").json()
        assert status["outcome"]["outcome"] == "violation" and status["decided_within_deadline"] is True

        # 4. The complainant's status page shows the outcome, within the deadline.
        page.reload()
        expect(page.locator("#status")).to_have_text("decided")
        expect(page.locator("#outcome")).to_contain_text("Violation found")
        expect(page.locator("#within-deadline")).to_be_visible()
        expect(page.locator("#actions")).to_contain_text("takedown")
        page.screenshot(path=str(tmp_path / "03-status.png"))

        # 5. The user appeals through the link in the notice the provider's webhook received.
        notice = next(
            json.loads(body) for _, body in hooks.received if json.loads(body)["recipient"] == "user"
        )
        link = notice["body"].split("/appeals/", 1)[1].split()[0]
        user_page = context.new_page()
        user_page.goto(f"{base}/appeals/{link}")
        user_page.fill("#grounds", "It is an illustration for a flood-safety campaign, captioned as such.")
        user_page.get_by_role("button", name="Send appeal").click()
        expect(user_page.locator("#appeal-filed")).to_be_visible()

        # 6. The first reviewer may not decide it; a second reviewer overturns.
        console.goto(f"{base}/console/appeals")
        console.locator("#appeals tbody tr a").first.click()
        expect(console.locator(".flash.error")).to_contain_text("another reviewer")
        console.context.clear_cookies()
        _login(console, base, "sam", sam, "/console/appeals")
        console.locator("#appeals tbody tr a").first.click()
        expect(console.locator("#grounds")).to_contain_text("flood-safety campaign")
        console.get_by_label("Overturn (revert the actions)").check()
        console.fill("#reasons", "The caption and the label identify it as an illustration.")
        console.get_by_role("button", name="Decide appeal").click()
        expect(console.locator(".flash.ok")).to_contain_text("overturned")
        expect(console.locator("#appeal-status")).to_have_text("overturned")
        console.screenshot(path=str(tmp_path / "04-overturned.png"))

        # The complainant's status page shows the appeal and its result.
        page.reload()
        expect(page.locator("#appeal-result")).to_contain_text("overturned")
    finally:
        context.close()

    # The picture is back, its hash is out of the bank, the account may generate again.
    again = _generate(base, studio.key, "alice", image)
    assert again.status_code == 200, again.text
    gateway = Gateway(server.settings)
    try:
        with gateway.db.session() as session:
            assert provenance.get_generation(session, produce_id).taken_down_at is None
            kinds = set(
                session.scalars(select(AuditEvent.event_type).where(AuditEvent.created_at >= started))
            )
            figures = cases.period_counts(session, started - dt.timedelta(minutes=1), dt.datetime.now(dt.UTC))
    finally:
        gateway.close()
    assert {
        "case.complaint_received",
        "case.decided",
        "case.action.takedown",
        "case.action.sanction",
        "provenance.taken_down",
        "moderation.library.published",
        "case.notice_sent",
        "case.appealed",
        "case.appeal_decided",
        "provenance.restored",
        "account.status_changed",
    } <= kinds
    assert figures["complaints_received"] == 1 and figures["complaints_closed"] == 1
    assert figures["handled_within_deadline"] == 1 and figures["takedowns"] == 1
    assert figures["sanctions"] == 1 and figures["appeals"] == 1 and figures["reversals"] == 1
    # The public transparency report (governance) shows the same figures.
    exported = httpx.get(f"{base}/transparency/export.json", timeout=30)
    assert exported.status_code == 200, exported.text
    section = exported.json()["sections"]["cases"]
    for name in (
        "complaints_received",
        "complaints_closed",
        "handled_within_deadline",
        "takedowns",
        "sanctions",
        "appeals",
        "reversals",
    ):
        assert section[name] == figures[name], name
    page_text = httpx.get(f"{base}/transparency", timeout=30).text
    assert "reversals" in page_text.lower()
