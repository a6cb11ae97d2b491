"""Background jobs on APScheduler (an existing job engine, not a home-made loop).

Every worker runs the scheduler; the jobs take database locks, so running them in several
workers at once is safe and merely redundant. The jobs themselves run in a separate process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from apscheduler.executors.pool import ProcessPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteSigner

if TYPE_CHECKING:
    from synthgate.config import Settings
    from synthgate.gateway.sdk import Gateway

log = structlog.get_logger("synthgate.jobs")


def audit_signer(gateway: Gateway) -> NoteSigner:
    return NoteSigner(gateway.settings.audit_origin, gateway.keys.audit_signing_key)


def integrate_and_checkpoint(gateway: Gateway) -> int:
    """Sequence pending audit events into the tree and sign a checkpoint if it grew."""
    count = audit.integrate_all(gateway.db.sessions)
    with gateway.db.session() as session:
        audit.sign_checkpoint(session, audit_signer(gateway), gateway.settings.audit_origin)
    return count


def retention_policy(gateway: Gateway) -> audit.RetentionPolicy:
    settings = gateway.settings
    return audit.RetentionPolicy.from_settings(settings.retention_default_days, settings.retention_days)


def retention_purge(gateway: Gateway) -> audit.PurgeResult:
    """Drop payloads past retention (leaf hashes stay), then integrate and sign so the purge
    announcement is itself in the log before anyone verifies."""
    policy = retention_policy(gateway)  # raises before touching anything if set below the minimum
    integrate_and_checkpoint(gateway)  # only integrated events are purged; sequence them first
    with gateway.db.session() as session:
        result = audit.purge(session, policy)
    integrate_and_checkpoint(gateway)
    log.info("jobs.retention_purge", events=result.events, generations=result.generations)
    return result


# --- the scheduler ------------------------------------------------------------------------------
#
# Jobs run in a child process of their own (APScheduler's process pool, spawned, one worker):
# sequencing and checkpointing are CPU work, and in the serving process they would hold the GIL
# while requests wait, which shows up directly in the gateway's tail latency.

_job_gateway: Gateway | None = None
JOB_NICENESS = 10


def _gateway_in_job_process(settings: Settings) -> Gateway:
    global _job_gateway
    if _job_gateway is None:
        from synthgate.gateway.sdk import Gateway

        # Background work yields the CPU to the requests being served; it only has to keep up.
        with contextlib.suppress(OSError):
            os.nice(JOB_NICENESS)
        _job_gateway = Gateway(settings)
    return _job_gateway


def exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """End the job process when the server that spawned it is gone (the pool's initializer).

    A server killed outright (SIGKILL, OOM killer, a supervisor's hard stop) never shuts its pool
    down, and its job process would live on, orphaned, holding a database connection; each restart
    would add one. An orphan is re-parented, so a changed parent id means it is time to go.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _sequence(gateway: Gateway) -> None:
    audit.integrate_all(gateway.db.sessions)


def partition_maintenance(gateway: Gateway) -> list[str]:
    """PostgreSQL: create the coming months' partitions ahead of time (a no-op on SQLite)."""
    from synthgate.provenance.partitions import ensure_partitions

    with gateway.db.session() as session:
        created = ensure_partitions(session.connection())
    if created:
        log.info("jobs.partitions_created", partitions=created)
    return created


def consent_expiry_purge(gateway: Gateway) -> int:
    """DSP-14: end consents past their date and delete their biometric templates."""
    from synthgate.consent import service as consent

    with gateway.db.session() as session:
        ended = consent.purge_expired(session)
    if ended:
        log.info("jobs.consent_expiry_purge", consents=ended)
    return ended


def _session_purge(gateway: Gateway) -> None:
    from synthgate.operators import service as operators

    with gateway.db.session() as session:
        operators.purge_expired_sessions(session)


def _filing_reminders(gateway: Gateway) -> None:
    from synthgate.governance import service as governance
    from synthgate.governance.workdays import calendar_for

    with gateway.db.session() as session:
        governance.send_filing_reminders(session, calendar=calendar_for(gateway.settings))


def _cases(gateway: Gateway) -> None:
    from synthgate.cases.jobs import tick

    tick(gateway)


_JOBS: dict[str, Callable[[Gateway], object]] = {
    "filing-reminders": _filing_reminders,
    "audit-sequence": _sequence,
    "audit-checkpoint": integrate_and_checkpoint,
    "retention-purge": retention_purge,
    "operator-session-purge": _session_purge,
    "cases-deadlines": _cases,
    "consent-expiry-purge": consent_expiry_purge,
    "partition-maintenance": partition_maintenance,
}


def run_job(name: str, settings: Settings) -> None:
    """Entry point in the job process. A failure is logged and retried at the next interval."""
    try:
        _JOBS[name](_gateway_in_job_process(settings))
    except Exception:  # a database hiccup must not kill the scheduler
        log.exception("jobs.failed", job=name)


def start_scheduler(gateway: Gateway) -> BackgroundScheduler:
    settings = gateway.settings
    executor = ProcessPoolExecutor(
        1,
        pool_kwargs={
            "mp_context": multiprocessing.get_context("spawn"),
            "initializer": exit_with_parent,
            "initargs": (os.getpid(),),
        },
    )
    scheduler = BackgroundScheduler(daemon=True, executors={"default": executor})
    intervals = {
        # Sequencing often keeps each batch small; a signed checkpoint is needed far less often.
        "audit-sequence": settings.audit_integrate_interval_seconds,
        "audit-checkpoint": settings.audit_checkpoint_interval_seconds,
        "retention-purge": settings.purge_interval_seconds,
        "operator-session-purge": 3600.0,
        # Complaint deadlines are in working days; reminders within minutes are early enough.
        "cases-deadlines": 300.0,
        # Expired consents stop matching at once (the matcher checks the date); this deletes templates.
        "consent-expiry-purge": 300.0,
        "partition-maintenance": 86400.0,
        # DSP-19 deadlines are counted in working days: an hourly look is plenty.
        "filing-reminders": 3600.0,
    }
    for name, seconds in intervals.items():
        scheduler.add_job(
            run_job,
            "interval",
            seconds=seconds,
            args=[name, settings],
            id=name,
            max_instances=1,
            coalesce=True,
        )
    # While the job process spawns (a second or two) the first runs find the previous one still
    # going and are skipped, as they should be; that is not worth a warning at every start.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler.start()
    return scheduler
