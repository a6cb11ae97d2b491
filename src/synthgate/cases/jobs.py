"""The cases job: deadline reminders and escalation (DSP-12), and retries of the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthgate.cases import service as cases

if TYPE_CHECKING:
    from synthgate.gateway.sdk import Gateway


def tick(gateway: Gateway) -> dict[str, Any]:
    with gateway.db.session() as session:
        result: dict[str, Any] = dict(cases.check_deadlines(session, gateway.settings))
    with gateway.db.session() as session:
        report_ids, notice_ids = cases.pending_deliveries(session)
    for report_id in report_ids:
        with gateway.db.session() as session:
            cases.deliver_report(session, gateway.settings, report_id)
    for notice_id in notice_ids:
        with gateway.db.session() as session:
            cases.deliver_notice(session, gateway.keys, gateway.settings, notice_id)
    result["retried"] = len(report_ids) + len(notice_ids)
    return result
