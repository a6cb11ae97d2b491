"""Remote guard adapters against a real server process on loopback speaking each protocol."""

from __future__ import annotations

import time

import pytest

from synthgate.gateway.sdk import Gateway
from synthgate.governance.models import Service
from synthgate.moderation.remote import (
    ChatGuardDetector,
    GuardProtocolError,
    OpenAIModerationDetector,
    parse_guard_reply,
)
from synthgate.moderation.screener import build_moderation
from tests.conftest import make_service
from tests.moderation.conftest import configure
from tests.moderation.guard_server import run_guard_server


@pytest.fixture(scope="module")
def guard() -> object:
    with run_guard_server() as url:
        yield url


def test_openai_moderation_protocol(guard: str) -> None:
    detector = OpenAIModerationDetector(guard, model="omni-moderation-latest")
    [finding] = detector.scan_text("how do I kill the process owner", "input")
    assert (finding.detector, finding.category, finding.rule) == (
        "openai-moderation",
        "A.1.5",
        "openai.violence",
    )
    assert finding.score == pytest.approx(0.97)
    assert detector.scan_text("a poem about spring", "input") == []


@pytest.mark.parametrize("model", ["Llama-Guard-3-1B", "Qwen3Guard-Gen-0.6B"])
def test_chat_guard_protocols(guard: str, model: str) -> None:
    detector = ChatGuardDetector(guard, model=model)
    findings = detector.scan_text("a nude picture where they kill", "output", prompt="draw something")
    assert sorted(f.category for f in findings) == ["A.1.5", "A.1.6"]
    assert all(f.score == 1.0 and f.detector == "chat-guard" for f in findings)
    assert detector.scan_text("a poem about spring", "input") == []


def test_guard_reply_formats() -> None:
    assert parse_guard_reply("safe") == ("safe", [])
    assert parse_guard_reply("unsafe\nS1,S10") == ("unsafe", ["S1", "S10"])
    assert parse_guard_reply("Safety: Controversial\nCategories: Politically Sensitive Topics") == (
        "controversial",
        ["Politically Sensitive Topics"],
    )
    with pytest.raises(GuardProtocolError):
        parse_guard_reply("Sure! Here is a poem")


def test_dsp10_remote_guard_in_a_services_verdict(gateway: Gateway, guard: str) -> None:
    chat = make_service(gateway)
    configure(
        gateway, chat.service, moderation_detectors={"chat-guard": {"url": guard, "model": "llama-guard"}}
    )
    with gateway.db.session() as session:
        moderation = build_moderation(session, session.get(Service, chat.service.id), [])
    blocked = moderation.verdict("tell me how to kill a neighbour", "input")
    assert blocked.action == "block" and blocked.decisive is not None
    assert blocked.decisive.detector == "chat-guard" and blocked.decisive.category == "A.1.5"
    assert blocked.detectors["chat-guard"].startswith("chat-guard:llama-guard@http://127.0.0.1:")
    assert moderation.verdict("tell me a story", "input").action == "allow"


@pytest.mark.parametrize(
    ("server", "on_failure", "action", "category", "reason"),
    [
        ({"delay_ms": 1500}, "closed", "block", "detector-error", "timed out after 0.3 s"),
        ({"delay_ms": 1500}, "open", "flag", "detector-skipped", "timed out after 0.3 s"),
        ({"broken": True}, "closed", "block", "detector-error", "GuardProtocolError"),
    ],
    ids=["timeout-closed", "timeout-open", "protocol-error-closed"],
)
def test_dsp10_slow_or_broken_guard_follows_its_failure_setting(
    gateway: Gateway, server: dict[str, object], on_failure: str, action: str, category: str, reason: str
) -> None:
    chat = make_service(gateway)
    with run_guard_server(**server) as url:  # type: ignore[arg-type]
        configure(
            gateway,
            chat.service,
            moderation_detectors={
                "openai-moderation": {"url": url, "timeout": 0.3, "on_failure": on_failure},
            },
        )
        with gateway.db.session() as session:
            moderation = build_moderation(session, session.get(Service, chat.service.id), [])
        started = time.perf_counter()
        verdict = moderation.verdict("tell me a story", "input")
        assert time.perf_counter() - started < 1.2
    assert verdict.action == action
    [(finding, _)] = verdict.findings
    assert finding.category == category and reason in finding.evidence
    assert any(f"fail-{on_failure}" in note for note in verdict.notes)
