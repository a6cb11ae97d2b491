"""Set-ups for demos and benchmarks, built from the same public service functions as everything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgate.config import Settings
from synthgate.db import upgrade
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.identity import service as identity
from synthgate.rules import service as rules

DEMO_PROVIDER_CODE = "001191440300708461136T1XGW3"
DEMO_PHONE = "+8613800138000"


class CapturingSmsSender:
    """Keeps sent messages in memory (a real verification round trip without a phone)."""

    name = "capture"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, message: str) -> None:
        self.sent.append((phone, message))

    def last_code(self) -> str:
        import re

        match = re.search(r"(\d{4,8})", self.sent[-1][1])
        assert match, "no code in the last message"
        return match.group(1)


def prepare_bench(
    data_dir: Path, database_url: str, upstream_url: str, blocked_terms: list[str]
) -> dict[str, Any]:
    """A service on ``upstream_url`` with ``blocked_terms``, a key, and a verified user under its rules."""
    settings = Settings(data_dir=data_dir, database_url=database_url, scheduler=False)
    upgrade(settings)
    sender = CapturingSmsSender()
    gateway = Gateway(settings, sms_sender=sender)
    actor = "cli:bench"
    try:
        with gateway.db.session() as session:
            service = governance.create_service(
                session,
                gateway.keys,
                slug="bench",
                name="Benchmark service",
                provider_code=DEMO_PROVIDER_CODE,
                actor=actor,
                filing_number="BENCH-0001",
                upstream_url=upstream_url,
                upstream_model="echo",
                settings={"blocked_terms": blocked_terms},
            )
            key = governance.create_api_key(session, service, actor=actor)
            rules.publish(session, service, version="1", title="Rules", body="Benchmark rules.", actor=actor)
            account, _ = identity.register_account(session, service, "bench-user", actor=actor)
            challenge = identity.start_phone_verification(
                session, gateway.keys, settings, sender, account, DEMO_PHONE
            )
            outcome = identity.confirm_phone_verification(
                session, gateway.keys, settings, account, challenge.id, sender.last_code()
            )
            assert outcome.ok
            rules.accept(session, account, "1")
        return {"api_key": key.secret, "user": "bench-user"}
    finally:
        gateway.close()
