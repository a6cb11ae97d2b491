"""The subject's consent page in a real browser (Chromium): verify, read, enrol, consent, withdraw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.consent import media
from tests.consent.conftest import PHONE, Served

pytestmark = pytest.mark.browser


def test_dsp14_subject_consents_and_withdraws_in_a_browser(
    served: Served, browser: Any, tmp_path: Path
) -> None:
    import httpx

    asked = httpx.post(
        served.url + "/v1/consents/requests",
        headers=served.studio.headers,
        json={"user": "editor", "contact": PHONE, "operations": ["face.swap", "face.manipulate"]},
        timeout=60,
    )
    assert asked.status_code == 201
    photo = tmp_path / "me.png"
    photo.write_bytes(media.astronaut_png())
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(served.notifier.last_link)
        assert "face.manipulate" in page.inner_text("body")
        page.click("#send-code")
        assert "A code was sent" in page.inner_text("#note")
        page.fill("#code", served.sms.last_code())
        page.click("#confirm-code")
        assert "单独同意书" in page.inner_text(".consent-text")
        page.uncheck("input[name=operations][value='face.manipulate']")  # narrower than asked
        page.set_input_files("#photo", str(photo))
        page.check("input[name=agree]")
        page.click("#grant")
        page.wait_for_selector("#consent")
        assert page.inner_text("#consent-status") == "active"
        assert "face.manipulate" not in page.inner_text("#consent")
        page.screenshot(path=str(tmp_path / "consented.png"))
        page.click("#revoke")
        page.wait_for_selector("#note")
        assert page.inner_text("#consent-status") == "revoked"
        assert page.query_selector("#revoke") is None
    finally:
        context.close()
