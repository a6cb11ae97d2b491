"""Helpers: put entries into the feature library the way operators do (propose, approve, publish)."""

from __future__ import annotations

from typing import Any

from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.moderation import service as library


def publish_terms(gateway: Gateway, *entries: tuple[str, str, str]) -> int:
    """(kind, value, category) entries proposed by alice, approved by bob, published."""
    with gateway.db.session() as session:
        proposed = library.propose(
            session,
            [library.Proposal(k, v, c, reason="test fixture", rule="R-test") for k, v, c in entries],
            actor="operator:alice",
        )
        library.decide(session, [e.id for e in proposed], approve=True, actor="operator:bob")
        return library.publish(session, actor="operator:bob").version


def configure(gateway: Gateway, service: Service, **settings: Any) -> Service:
    """Set moderation keys of a service's settings the way an operator does (validated, audited)."""
    with gateway.db.session() as session:
        row = session.get(Service, service.id)
        assert row is not None
        governance.update_service_settings(session, row, settings, actor="operator:alice")
        session.flush()
        session.expunge(row)
    return row
