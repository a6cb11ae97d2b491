"""Background jobs on APScheduler (an existing job engine, not a home-made loop).

Every worker runs the scheduler; the jobs take database locks, so running them in several
workers at once is safe and merely redundant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteSigner

if TYPE_CHECKING:
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


def _safe_integrate(gateway: Gateway) -> None:
    try:
        integrate_and_checkpoint(gateway)
    except Exception:  # a database hiccup must not kill the scheduler; the next run retries
        log.exception("jobs.audit_integrate_failed")


def start_scheduler(gateway: Gateway) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(
        _safe_integrate,
        "interval",
        seconds=gateway.settings.audit_integrate_interval_seconds,
        args=[gateway],
        id="audit-integrate",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
