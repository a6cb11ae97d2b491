"""The whole story through the public interfaces, each part a real process on loopback.

A provider creates a service and key (CLI), registers an end user and verifies the phone (HTTP
API, code delivered by the webhook SMS sender to an SMS-gateway stand-in), the user accepts the
rules, chats through the proxy against a real upstream process, receives a labeled answer with a
produce id — and a compliance operator sees that generation in the console in a real browser.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthgate.config import Settings
from synthgate.labeling.text import is_conformant_label
from tests.conftest import server_env, start_server, stop


@pytest.fixture
def sms_gateway() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An SMS gateway stand-in: accepts the webhook sender's JSON over HTTP on loopback."""
    inbox: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            inbox.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms", inbox
    server.shutdown()


def cli(settings: Settings, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        env=server_env(settings, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


@pytest.mark.browser
def test_story_end_to_end(
    settings: Settings,
    upstream: str,
    sms_gateway: tuple[str, list[dict[str, Any]]],
    browser: Any,
    tmp_path: Path,
) -> None:
    sms_url, inbox = sms_gateway
    init = cli(settings, "init")
    admin_password = re.search(r"one-time password: (\S+)", init)
    assert admin_password, init

    service = json.loads(
        cli(
            settings,
            "service",
            "create",
            "--slug",
            "chat",
            "--name",
            "Chat",
            "--provider-code",
            "001191440300708461136T1XGW3",
            "--filing-number",
            "Beijing-XXX-202611240001",
            "--filing-link",
            "https://beian.example.cn/1",
            "--upstream-url",
            upstream,
            "--json",
        )
    )
    key = json.loads(cli(settings, "key", "create", "--service", "chat", "--json"))["key"]
    rules_file = tmp_path / "rules.md"
    rules_file.write_text("第一条 用户应遵守法律法规。", encoding="utf-8")
    cli(
        settings,
        "rules",
        "publish",
        "--service",
        "chat",
        "--version",
        "2026-11",
        "--title",
        "平台规则",
        "--file",
        str(rules_file),
    )

    server = start_server(settings, SYNTHGATE_SMS_SENDER="webhook", SYNTHGATE_SMS_WEBHOOK_URL=sms_url)
    try:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert api.post("/v1/accounts", json={"user_id": "u-100"}).status_code == 201
        refused = api.post(
            "/v1/chat/completions", json={"user": "u-100", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "identity.unverified"

        started = api.post("/v1/accounts/u-100/verification/phone", json={"phone": "+8613700001111"})
        assert started.status_code == 202, started.text
        assert inbox[-1]["to"] == "+8613700001111"
        code = re.search(r"(\d{6})", inbox[-1]["message"])
        assert code
        confirmed = api.post(
            "/v1/accounts/u-100/verification/phone/confirm",
            json={"challenge_id": started.json()["challenge_id"], "code": code.group(1)},
        )
        assert confirmed.status_code == 200, confirmed.text

        not_accepted = api.post(
            "/v1/chat/completions", json={"user": "u-100", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert not_accepted.json()["error"]["code"] == "rules.not_accepted"
        assert api.post("/v1/accounts/u-100/rules/accept", json={"version": "2026-11"}).status_code == 200

        answer = api.post(
            "/v1/chat/completions",
            json={"model": "echo", "user": "u-100", "messages": [{"role": "user", "content": "写一句问候"}]},
        )
        assert answer.status_code == 200, answer.text
        content = answer.json()["choices"][0]["message"]["content"]
        assert content.startswith("Echo: 写一句问候") and is_conformant_label(content)
        produce_id = answer.json()["synthgate"]["produce_id"]
        assert answer.json()["synthgate"]["filing"]["number"] == "Beijing-XXX-202611240001"

        new_password = "a much longer secret 42!"
        page = browser.new_page()
        page.goto(server.url + "/console/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", admin_password.group(1))
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/console/password.*"))
        page.fill("input[name=current_password]", admin_password.group(1))
        page.fill("input[name=new_password]", new_password)
        page.fill("input[name=confirm_password]", new_password)
        page.click("button[type=submit]")
        page.goto(server.url + "/console/generations")
        assert produce_id in page.content()
        page.click(f"text={produce_id}")
        page.wait_for_url(re.compile(f".*/console/generations/{produce_id}"))
        detail = page.content()
        assert "u-100" in detail and "explicit" in detail
        page.screenshot(path=str(tmp_path / "story-generation.png"), full_page=True)
        assert service["slug"] == "chat"
    finally:
        stop(server.process)
    verified = json.loads(cli(settings, "audit", "verify", "--json"))
    assert verified["ok"], verified
