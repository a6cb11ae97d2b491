"""Governance gate: its cost per request, and how fast a suspension reaches another worker process.

1. The gate's own time per request (snapshot served from the per-worker cache, including the
   once-a-second look at the newest change), on a service with a filed algorithm, 20 biometric
   versions, 20 public-facing functions and their passed assessments. There is no peer product
   with such a stage; the yardstick is the whole check phase, which takes milliseconds.
2. Propagation: a real ``synthgate serve`` process answers checks in a loop; this process writes a
   suspension (then a lift) and measures the time until the other process refuses (then accepts).

    .venv/bin/python bench/governance_gate.py [--database sqlite|postgres] [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import make_service, ready_user, start_server, stop
from tests.governance.helpers import filed_algorithm, passed_assessment

from synthgate.config import Settings
from synthgate.db import upgrade
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.gate import GovernanceGateStage

GATED = [
    "identity",
    "rules",
    "governance_gate",
    "input_screening",
    "output_screening",
    "explicit_label",
    "record",
]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _settings(database: str, data_dir: Path, pg_url: str = PG_URL) -> Settings:
    if database == "postgres":
        from sqlalchemy import create_engine, text

        from synthgate.config import normalise_database_url

        # The schema is dropped and rebuilt: point --pg-url at a database of its own.
        engine = create_engine(normalise_database_url(pg_url))
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        settings = Settings(data_dir=data_dir, database_url=pg_url, scheduler=False)
    else:
        settings = Settings(data_dir=data_dir, database_url=None, scheduler=False)
    upgrade(settings)
    return settings


def _populate(gateway: Gateway, sms: CapturingSmsSender) -> None:
    svc = make_service(gateway, "bench")
    ready_user(gateway, sms, svc.service)
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings)
        service = governance.get_service(session, "bench")
        governance.link_service(session, service, algorithm, actor="bench")
        for n in range(20):
            version = governance.add_version(
                session, algorithm, version=f"{n}.0", models=[f"model-{n}"], biometric=True, actor="bench"
            )
            passed_assessment(session, gateway.settings, version=version)
            function = governance.declare_function(
                session, service, operation=f"feature.f{n}", title=f"f{n}", public_facing=True, actor="bench"
            )
            passed_assessment(session, gateway.settings, function_id=function.id)


def gate_cost(settings: Settings, sms: CapturingSmsSender, n: int = 2000) -> dict[str, float]:
    gateway = Gateway(settings, sms_sender=sms)
    try:
        _populate(gateway, sms)
        stage = GovernanceGateStage()
        with gateway.db.session() as session:
            service = governance.get_service(session, "bench")
            session.expunge(service)
        from synthgate.gateway.pipeline import GenerationContext

        ctx = GenerationContext(
            settings=settings,
            keys=gateway.keys,
            service=service,
            external_user="u1",
            mode="two_phase",
            input_text="x",
            operation="face.swap",
            model="model-7",
        )
        times = []
        with gateway.db.session() as session:
            stage.run(ctx, session)  # first build of the snapshot
            for _ in range(n):
                ctx.events.clear()
                started = time.perf_counter()
                stage.run(ctx, session)
                times.append((time.perf_counter() - started) * 1e6)
        times.sort()
        return {
            "gate_p50_us": times[len(times) // 2],
            "gate_p99_us": times[int(len(times) * 0.99)],
        }
    finally:
        gateway.close()


def propagation(settings: Settings, trials: int) -> dict[str, float]:
    gateway = Gateway(settings)
    server = start_server(settings, SYNTHGATE_STAGES=json.dumps(GATED))
    key = None
    try:
        with gateway.db.session() as session:
            service = governance.get_service(session, "bench")
            key = governance.create_api_key(session, service, actor="bench").secret
        url = server.url + "/v1/generations"
        headers = {"Authorization": f"Bearer {key}"}
        body = {"user": "u1", "input": "hello"}
        suspend_s, lift_s = [], []
        with httpx.Client(timeout=10) as client:
            for _ in range(trials):
                with gateway.db.session() as session:
                    suspension = governance.suspend(
                        session, governance.get_service(session, "bench"), reason="bench", actor="bench"
                    )
                    suspension_id = suspension.id
                started = time.monotonic()
                while client.post(url, json=body, headers=headers).status_code != 403:
                    pass
                suspend_s.append(time.monotonic() - started)
                with gateway.db.session() as session:
                    governance.lift_suspension(session, suspension_id, actor="bench")
                started = time.monotonic()
                while client.post(url, json=body, headers=headers).status_code != 201:
                    pass
                lift_s.append(time.monotonic() - started)
                time.sleep(0.3)
        return {
            "suspend_median_s": statistics.median(suspend_s),
            "suspend_max_s": max(suspend_s),
            "lift_median_s": statistics.median(lift_s),
            "lift_max_s": max(lift_s),
        }
    finally:
        stop(server.process)
        gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--pg-url", default=PG_URL, help="a PostgreSQL database the bench may wipe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(args.database, Path(tmp), args.pg_url)
        sms = CapturingSmsSender()
        cost = gate_cost(settings, sms)
        spread = propagation(settings, args.trials)
    print(f"database: {args.database}")
    for name, value in {**cost, **spread}.items():
        print(f"  {name:28s} {value:10.3f}")


if __name__ == "__main__":
    main()
