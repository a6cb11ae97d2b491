"""Governance in a real headless Chromium against a real ``synthgate serve`` process: a compliance
officer files an algorithm with its labeling materials, uploads the assessment report through the
file picker, signs the assessment off, suspends a feature, and reads the transparency dashboard,
whose charts are inline SVG drawn by the browser (no script, nothing fetched from elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.operators import service as operators
from tests.conftest import LiveServer, make_service
from tests.governance.helpers import ITEMS, pdf_bytes

pytestmark = pytest.mark.browser
PASSWORD = "compliance officer password 1"


def test_dsp19_dsp15_governance_console_in_a_browser(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gateway = Gateway(live_server.settings)
    try:
        make_service(gateway, "chat")
        with gateway.db.session() as session:
            operators.create_operator(
                session, username="cora", role="compliance", actor="t", password=PASSWORD
            )
    finally:
        gateway.close()
    report = tmp_path / "安全评估报告.pdf"
    report.write_bytes(pdf_bytes("security assessment report"))

    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        page.goto(f"{base}/console/governance")
        page.fill("#username", "cora")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{base}/console/governance")

        page.locator("summary", has_text="New algorithm").click()
        page.fill("#name", "图像生成算法")
        for field in ("provider_name", "service_form", "application_domain"):
            page.fill(f"#{field}", ITEMS[field])
        page.select_option("#algorithm_type", ITEMS["algorithm_type"])
        page.fill("#self_assessment", ITEMS["self_assessment"])
        page.fill("#public_content", ITEMS["public_content"])
        page.get_by_role("button", name="Create algorithm").click()
        expect(page.locator(".flash.ok")).to_contain_text("Algorithm created")

        page.fill("#m-title", "标识方法")
        page.fill("#m-description", "文本末尾添加“人工智能生成”；文件元数据写入 AIGC 标识。")
        page.get_by_role("button", name="Attach material").click()
        page.fill("#filing_number", "网信算备110108000000000010001")
        page.fill("#filing_link", "https://beian.example.cn/notice/10001")
        page.get_by_role("button", name="Record filing").click()
        expect(page.locator(".flash.ok")).to_contain_text("Filing recorded")
        page.select_option("#l-service", "chat")
        page.get_by_role("button", name="Link", exact=True).click()
        page.fill("#v-version", "1.0")
        page.fill("#v-models", "faceswap-1")
        page.check("input[name=biometric]")
        page.get_by_role("button", name="Add version").click()
        expect(page.locator("body")).to_contain_text("faceswap-1")

        page.goto(f"{base}/console/governance/assessments")
        page.fill("#title", "换脸模型安全评估")
        page.get_by_role("button", name="Open assessment").click()
        expect(page.locator(".flash.ok")).to_contain_text("attach its evidence")
        page.fill("#conclusion", "风险可控，通过。")
        page.get_by_role("button", name=re.compile("Sign off as")).click()  # no evidence yet
        expect(page.get_by_role("heading", name="Conflict")).to_be_visible()
        expect(page.locator("main")).to_contain_text("attach the assessment's evidence")
        page.go_back()
        page.set_input_files("input[type=file]", str(report))
        page.get_by_role("button", name="Upload evidence").click()
        expect(page.locator(".flash.ok")).to_contain_text("Evidence stored")
        expect(page.get_by_role("link", name="安全评估报告.pdf")).to_be_visible()
        page.fill("#conclusion", "风险可控，通过。")
        page.get_by_role("button", name=re.compile("Sign off as")).click()
        expect(page.locator(".flash.ok")).to_contain_text("Signed off: passed")
        page.screenshot(path=str(tmp_path / "assessment.png"), full_page=True)

        page.goto(f"{base}/console/governance")
        page.fill("#sus-feature", "face.swap")
        page.fill("#sus-reason", "突发事件")
        page.get_by_role("button", name="Suspend now").click()
        expect(page.locator("#suspensions")).to_contain_text("突发事件")

        page.goto(f"{base}/console/transparency")
        charts = page.locator("svg.chart")
        expect(page.get_by_role("img", name="Account sanctions by type")).to_have_count(1)
        assert charts.count() >= 1
        page.screenshot(path=str(tmp_path / "transparency.png"), full_page=True)
        expect(page.locator("table")).to_contain_text("assessments.security.passed")

        page.goto(f"{base}/transparency")
        expect(page.locator(".filing-number")).to_contain_text("网信算备110108000000000010001")
        page.goto(f"{base}/rules/chat")
        expect(page.locator("footer.filing")).to_contain_text("网信算备110108000000000010001")
    finally:
        context.close()
    assert all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]
    # The one error the browser reports is the 409 page we asked for (and a favicon nobody ships).
    assert [e for e in errors if "409" not in e and "404" not in e] == []
    assert all(url.endswith("/favicon.ico") for url in missing), missing
    gateway = Gateway(live_server.settings)
    try:
        with gateway.db.session() as session:
            assert [s.feature for s in governance.list_suspensions(session, active_only=True)] == [
                "face.swap"
            ]
    finally:
        gateway.close()
