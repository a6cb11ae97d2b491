"""The review queue's figures in the transparency report (DSP-10 human review, counted per period)."""

from __future__ import annotations

import datetime as dt

from synthgate.db import utcnow
from synthgate.gateway.sdk import Gateway
from synthgate.governance import transparency
from synthgate.moderation import review
from tests.conftest import make_service
from tests.moderation.test_review import hold_output


def test_dsp10_review_queue_figures_reach_the_transparency_report(gateway: Gateway) -> None:
    chat = make_service(gateway)
    decided = hold_output(gateway, chat.service)
    hold_output(gateway, chat.service, text="联系我 13900139000")  # still pending
    with gateway.db.session() as session:
        review.claim(session, decided, actor="operator:rita", role="reviewer")
        review.decide(
            session, gateway.keys, decided, actor="operator:rita", role="reviewer", decision="release"
        )
    start, end = utcnow() - dt.timedelta(hours=1), utcnow() + dt.timedelta(hours=1)
    with gateway.db.session() as session:
        counts = review.period_counts(session, start, end)
        assert counts["held"] == 2 and counts["released"] == 1 and counts["withheld"] == 0
        assert counts["pending_at_end"] == 1 and counts["decided_within_sla"] == 1
        assert counts["median_decision_minutes"] is not None and counts["median_decision_minutes"] < 5
        # A period before anything happened counts nothing.
        empty = review.period_counts(session, start - dt.timedelta(days=2), start - dt.timedelta(days=1))
        assert empty["held"] == 0 and empty["median_decision_minutes"] is None
        figures = transparency.review_figures(session, {}, start, end)
    assert figures["queue"]["held"] == 2
