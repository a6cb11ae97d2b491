"""The review console in a real headless Chromium against a real ``synthgate serve`` process: a
reviewer sees the queue with the overdue item highlighted, opens a held output whose picture is
blurred until revealed (and can be greyed), claims it, releases it, and the provider's callback
endpoint (a real HTTP server on loopback) receives the released content."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from synthgate.gateway.sdk import Gateway
from synthgate.media import MediaItem
from synthgate.moderation import review
from tests.conftest import LiveServer, make_service
from tests.moderation.conftest import configure
from tests.moderation.test_review import Receiver, _png, hold_output
from tests.moderation.test_review import receiver as receiver
from tests.web.conftest import make_operator

pytestmark = pytest.mark.browser


def test_dsp10_reviewer_releases_a_held_output_in_the_console(
    live_server: LiveServer,
    browser: Any,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    gateway = Gateway(live_server.settings)
    try:
        password = make_operator(gateway, "rita", "reviewer")
        chat = make_service(gateway)
        svc = configure(gateway, chat.service, review_callback_url=receiver.url)
        photo = MediaItem.from_bytes(_png(), role="output")
        held = hold_output(gateway, svc, media=[photo])
        late = hold_output(gateway, svc, text="联系我 13912345678")
        with gateway.db.session() as session:
            review.get(session, late).due_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    finally:
        gateway.close()

    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{base}/console/review")
        page.fill("#username", "rita")
        page.fill("#password", password)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{base}/console/review")
        rows = page.locator("#review-items tbody tr")
        expect(rows).to_have_count(2)
        overdue = page.locator("#review-items tr.overdue")
        expect(overdue).to_have_count(1)
        expect(overdue).to_contain_text("overdue")
        expect(overdue.locator("a")).to_have_attribute("href", f"/console/review/{late}")
        page.screenshot(path=str(tmp_path / "01-queue.png"))

        page.goto(f"{base}/console/review/{held}")
        image = page.locator(".held-media img")
        assert "blur" in image.evaluate("e => getComputedStyle(e).filter"), "blurred until revealed"
        page.get_by_text("Reveal image 1").click()
        expect(image).to_have_css("filter", "none")
        page.get_by_text("Greyscale").click()
        assert "grayscale" in image.evaluate("e => getComputedStyle(e).filter")
        expect(page.locator("#held-text")).to_have_text("他的手机号是13812345678")
        page.screenshot(path=str(tmp_path / "02-item.png"))

        page.get_by_role("button", name="Claim").click()
        expect(page.locator(".flash.ok")).to_contain_text("Claimed")
        page.get_by_label("Release (deliver to the user)").check()
        page.fill("#note", "business hotline, public")
        page.get_by_role("button", name="Submit decision").click()
        expect(page.locator(".flash.ok")).to_contain_text(
            "The item was released. Provider callback: delivered."
        )
        expect(page.locator("#review-status")).to_have_text("released")
        page.screenshot(path=str(tmp_path / "03-released.png"))
    finally:
        context.close()

    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert payload["event"] == "review.released" and payload["review_id"] == held
    assert payload["output"] == "他的手机号是13812345678" and headers["x-synthgate-signature"].startswith(
        "sha256="
    )
