"""Helpers: put entries into the feature library the way operators do (propose, approve, publish)."""

from __future__ import annotations

from synthgate.gateway.sdk import Gateway
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
