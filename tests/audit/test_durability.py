"""An acknowledged append is never lost: SIGKILL a real server under load, restart it, and every
event whose request was answered is in the log, which verifies (CSL-21 / DSP-16 logs)."""

from __future__ import annotations

import threading
import time

import httpx
from sqlalchemy import select

from synthgate.audit import service as audit
from synthgate.audit.models import AuditEvent, AuditTree
from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from tests.conftest import make_service, start_server, stop

WRITERS = 4
MAX_REQUESTS = 300
KILL_AFTER_ACKS = 80


def test_csl21_sigkill_under_load_loses_no_acknowledged_event(settings: Settings, gateway: Gateway) -> None:
    service = make_service(gateway, scopes=["accounts"])
    # The server runs its own sequencer every 50 ms, so the kill also lands in the middle of integration.
    env = {"SYNTHGATE_SCHEDULER": "true", "SYNTHGATE_AUDIT_INTEGRATE_INTERVAL_SECONDS": "0.05"}
    server = start_server(settings, **env)
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    sent = 0
    stop_flag = threading.Event()

    def writer(number: int) -> None:
        nonlocal sent
        with httpx.Client(base_url=server.url, headers=service.headers, timeout=10) as client:
            n = 0
            while not stop_flag.is_set():
                with lock:
                    if sent >= MAX_REQUESTS:
                        return
                    sent += 1
                user = f"w{number}-{n}"
                n += 1
                try:
                    response = client.post("/v1/accounts", json={"user_id": user})
                except httpx.HTTPError:
                    return  # the server is gone: this request was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged[response.json()["id"]] = user

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.kill()  # SIGKILL: no shutdown hooks, no final commit, no flush
    server.process.wait()
    stop_flag.set()
    for thread in threads:
        thread.join(timeout=15)
    with lock:
        acked = dict(acknowledged)
    assert len(acked) >= KILL_AFTER_ACKS, f"only {len(acked)} acknowledged before the deadline"

    # Restart: the restarted server's sequencer integrates whatever the killed one left pending.
    restarted = start_server(settings, **env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with gateway.db.session() as session:
                pending = session.scalar(
                    select(AuditEvent.id).where(AuditEvent.leaf_index.is_(None)).limit(1)
                )
            if pending is None:
                break
            time.sleep(0.1)
        assert pending is None, "the restarted server did not integrate the pending events"
    finally:
        stop(restarted.process)

    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        logged = set(
            session.scalars(
                select(AuditEvent.subject_id).where(
                    AuditEvent.event_type == "account.registered", AuditEvent.leaf_index.is_not(None)
                )
            )
        )
        report = audit.verify(session, audit_signer(gateway).verifier())
        tree = session.get(AuditTree, 1)
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} acknowledged registrations have no audit event"
    assert report.ok and report.pending == 0, report.problems
    assert tree is not None and tree.size == report.checked
