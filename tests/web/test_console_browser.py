"""The console in a real headless Chromium against a real ``synthgate serve`` process.

An admin created with a one-time password logs in, sets their own password, creates a service and an
API key; the provider's backend registers and verifies a user over the HTTP API with that key; the
admin finds the user by ID number, suspends them with a reason, and sees the change in the audit log,
which then verifies. Screenshots land in the test's tmp dir for a human look.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthgate.devtools.demo import DEMO_PROVIDER_CODE
from synthgate.gateway.sdk import Gateway
from synthgate.identity.validators import random_resident_id
from synthgate.operators import service as operators
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

NEW_PASSWORD = "我的新密码 is long enough"


def _admin(server: LiveServer) -> str:
    """The first admin, made the way ``synthgate init`` makes it: a one-time password to replace."""
    gateway = Gateway(server.settings)
    try:
        with gateway.db.session() as session:
            _, password = operators.create_operator(
                session, username="admin", role="admin", actor="cli:test", must_change_password=True
            )
    finally:
        gateway.close()
    return password


def test_console_login_service_key_and_account_status_change(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    one_time = _admin(live_server)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # Not logged in: the console sends us to the login page, and back afterwards.
        page.goto(f"{base}/console/accounts")
        expect(page).to_have_url(re.compile(r"/console/login\?next=/console/accounts$"))
        expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
        page.screenshot(path=str(tmp_path / "01-login.png"))

        page.fill("#password", "a wrong password")
        page.fill("#username", "admin")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".flash.error")).to_contain_text("wrong username, password or code")

        page.fill("#username", "admin")
        page.fill("#password", one_time)
        page.keyboard.press("Enter")  # the form works from the keyboard
        expect(page).to_have_url(f"{base}/console/password")
        expect(page.get_by_role("alert").first).to_be_visible()
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sg_console"]["httpOnly"] and cookies["sg_console"]["sameSite"] == "Lax"

        page.fill("#current_password", one_time)
        page.fill("#new_password", NEW_PASSWORD)
        page.fill("#confirm_password", NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page).to_have_url(f"{base}/console")
        expect(page.locator(".flash.ok")).to_contain_text("Your password was changed")
        page.screenshot(path=str(tmp_path / "01b-dashboard.png"))

        # A service, through the form.
        page.get_by_role("link", name="Services", exact=True).click()
        page.fill("#slug", "chat")
        page.fill("#name", "对话助手")
        page.fill("#provider_code", DEMO_PROVIDER_CODE)
        page.fill("#filing_number", "Beijing-ChatHelper-20260101")
        page.fill("#filing_link", "https://beian.example.cn/notice/1")
        page.fill("#blocked_terms", "违禁词\nforbidden-term")
        page.get_by_role("button", name="Create service").click()
        expect(page).to_have_url(f"{base}/console/services/chat")
        expect(page.locator(".flash.ok")).to_contain_text("Service chat created")
        expect(page.locator("dl.facts")).to_contain_text(DEMO_PROVIDER_CODE)

        # A key: the secret is shown once.
        page.fill("#key-name", "backend")
        page.get_by_role("button", name="Create key").click()
        secret = page.locator("#new-key").inner_text().strip()
        assert secret.startswith("sg_")
        page.screenshot(path=str(tmp_path / "02-service-key.png"), full_page=True)
        page.goto(f"{base}/console/services/chat")  # coming back: the secret is not shown again
        expect(page.locator("table").first).to_contain_text(secret[:10])
        assert secret not in page.content()

        # The provider's backend, with that key: a user who verifies a resident ID number.
        id_number = random_resident_id(random.Random(20260101))
        headers = {"Authorization": f"Bearer {secret}"}
        assert (
            httpx.post(f"{base}/v1/accounts", json={"user_id": "alice"}, headers=headers).status_code == 201
        )
        verified = httpx.post(
            f"{base}/v1/accounts/alice/verification/id-number",
            json={"id_number": id_number, "name": "张三"},
            headers=headers,
        )
        assert verified.status_code == 200, verified.text

        # Find her by the ID number (matched by keyed hash), open her account.
        page.get_by_role("link", name="Accounts", exact=True).click()
        page.fill("#q", id_number)
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("heading", name="1 result")).to_be_visible()
        page.get_by_role("link", name="alice").click()
        expect(page.get_by_role("heading", name="Account alice")).to_be_visible()
        masked = id_number[:3] + "*" * 11 + id_number[-4:]
        expect(page.locator("table").first).to_contain_text(masked)
        assert id_number not in page.content()

        # Suspend with a reason.
        page.select_option("#new-status", "suspended")
        reason = "多次发布谣言 / repeated rumours"
        page.fill("#reason", reason)
        page.get_by_role("button", name="Change status").click()
        expect(page.locator(".flash.ok")).to_contain_text("Status changed to suspended")
        expect(page.locator("#account-status")).to_contain_text("suspended")
        expect(page.locator("#status-history")).to_contain_text(reason)
        expect(page.locator("#status-history")).to_contain_text("operator:admin")
        page.screenshot(path=str(tmp_path / "03-account.png"), full_page=True)

        # The provider's API sees the same state.
        shown = httpx.get(f"{base}/v1/accounts/alice", headers=headers).json()
        assert shown["status"] == "suspended" and shown["status_reason"] == reason

        # The audit log shows the change, by this operator, and the log verifies.
        page.get_by_role("link", name="Audit log").click()
        page.get_by_role("button", name="Verify log").click()
        expect(page.locator(".flash.ok")).to_contain_text("The log verifies")
        expect(page.locator("#verify-report")).to_contain_text("passed")
        change_row = page.locator("#audit-events tr", has_text="account.status_changed")
        expect(change_row).to_have_count(1)
        expect(change_row).to_contain_text("operator:admin")
        expect(change_row).to_contain_text("repeated rumours")
        for event in (
            "operator.password_changed",
            "service.created",
            "api_key.created",
            "operator.login_succeeded",
        ):
            expect(page.locator("#audit-events")).to_contain_text(event)
        page.screenshot(path=str(tmp_path / "04-audit.png"), full_page=True)

        # Logging out ends the session for real.
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{base}/console/login")
        page.goto(f"{base}/console/audit")
        expect(page).to_have_url(re.compile(r"/console/login"))
    finally:
        context.close()
        print(f"\nconsole screenshots: {tmp_path}")


def test_reviewer_sees_no_write_forms_they_may_not_use(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gateway = Gateway(live_server.settings)
    try:
        with gateway.db.session() as session:
            operators.create_operator(
                session, username="rita", role="reviewer", actor="cli:test", password="reviewer passphrase"
            )
    finally:
        gateway.close()
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/console/login")
        page.fill("#username", "rita")
        page.fill("#password", "reviewer passphrase")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        nav = page.get_by_role("navigation", name="Console sections")
        expect(nav).to_contain_text("Accounts")
        expect(nav).to_contain_text("Generations")
        expect(nav).not_to_contain_text("Operators")
        expect(nav).not_to_contain_text("Audit log")
        response = page.goto(f"{live_server.url}/console/operators")
        assert response is not None and response.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        page.screenshot(path=str(tmp_path / "05-forbidden.png"))
    finally:
        context.close()
