"""The command line, run as a real process the way an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from synthgate.config import Settings
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from tests.conftest import ready_user, server_env


def sg(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        env=server_env(settings, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_cli_help_everywhere(settings: Settings) -> None:
    for command in (
        [],
        ["service"],
        ["key"],
        ["account"],
        ["rules"],
        ["db"],
        ["audit"],
        ["service", "create"],
        ["account", "set-status"],
        ["serve"],
        ["init"],
    ):
        result = sg(settings, *command, "--help")
        assert "Usage" in result.stdout


def test_cli_story(settings: Settings, tmp_path: Path, sms: CapturingSmsSender) -> None:
    sg(settings, "db", "upgrade")
    init = sg(settings, "init")
    assert "one-time password" in init.stdout
    assert "no admin created" in sg(settings, "init").stdout  # idempotent

    created = json.loads(
        sg(
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
            "ABC-123",
            "--blocked-term",
            "坏词",
            "--json",
        ).stdout
    )
    assert created["slug"] == "chat"
    bad = sg(
        settings, "service", "create", "--slug", "x2", "--name", "X", "--provider-code", "nope", check=False
    )
    assert bad.returncode == 2 and "provider code" in bad.stderr
    assert json.loads(sg(settings, "service", "list", "--json").stdout)[0]["filing_number"] == "ABC-123"

    key = json.loads(
        sg(settings, "key", "create", "--service", "chat", "--scope", "generate", "--json").stdout
    )
    assert key["key"].startswith("sg_") and key["scopes"] == ["generate"]
    assert sg(settings, "key", "list", "--service", "chat", "--json").stdout.count(key["prefix"]) == 1
    sg(settings, "key", "revoke", key["prefix"])
    assert json.loads(sg(settings, "key", "list", "--service", "chat", "--json").stdout)[0]["revoked"] is True

    rules_file = tmp_path / "rules.md"
    rules_file.write_text("第一条 遵守法律。", encoding="utf-8")
    sg(
        settings,
        "rules",
        "publish",
        "--service",
        "chat",
        "--version",
        "1",
        "--title",
        "规则",
        "--file",
        str(rules_file),
    )

    gateway = Gateway(settings, sms_sender=sms)
    with gateway.db.session() as session:
        from synthgate.governance import service as governance

        service = governance.get_service(session, "chat")
        session.expunge(service)
    ready_user(gateway, sms, service, "alice")
    gateway.close()

    listed = json.loads(sg(settings, "account", "list", "--service", "chat", "--json").stdout)
    assert [a["user_id"] for a in listed] == ["alice"]
    sg(
        settings,
        "account",
        "set-status",
        "alice",
        "suspended",
        "--service",
        "chat",
        "--reason",
        "spam",
        "--until",
        "2099-01-01T00:00:00+08:00",
    )
    shown = json.loads(sg(settings, "account", "show", "alice", "--service", "chat", "--json").stdout)
    assert shown["status"] == "suspended" and shown["history"][0]["reason"] == "spam"
    assert shown["history"][0]["operator"].startswith("cli:")
    naive = sg(
        settings,
        "account",
        "set-status",
        "alice",
        "warned",
        "--service",
        "chat",
        "--reason",
        "r",
        "--until",
        "2099-01-01",
        check=False,
    )
    assert naive.returncode == 2 and "time zone" in naive.stderr

    verified = json.loads(sg(settings, "audit", "verify", "--json").stdout)
    assert verified["ok"] and verified["size"] > 5


def test_webhook_secret_is_derived_shown_on_request_and_audited(settings: Settings, gateway: Gateway) -> None:
    from sqlalchemy import select

    from synthgate.audit.models import AuditEvent
    from tests.conftest import make_service

    chat = make_service(gateway)
    shown = sg(settings, "service", "webhook-secret", "--service", chat.service.slug).stdout.strip()
    assert shown == gateway.keys.webhook_secret(chat.service.id) and len(shown) == 64
    assert shown != gateway.keys.webhook_secret("another-service")
    with gateway.db.session() as session:
        stored = session.scalars(
            select(AuditEvent.data).where(AuditEvent.event_type == "service.webhook_secret_revealed")
        )
        assert list(stored) == [{}]  # the reveal is recorded; the secret itself is nowhere in the log
    missing = sg(settings, "service", "webhook-secret", "--service", "nope", check=False)
    assert missing.returncode != 0 and "no service" in (missing.stderr + missing.stdout)
