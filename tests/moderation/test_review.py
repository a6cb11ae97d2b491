"""The human review queue: hold, claim with a lease, decide, escalate, callback to the provider.

The provider's callback endpoint is a real HTTP server on loopback that records what it gets.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.errors import Conflict, Forbidden
from synthgate.gateway.sdk import Gateway
from synthgate.governance.models import Service
from synthgate.media import MediaItem
from synthgate.moderation import review
from synthgate.moderation.models import LibraryEntry, ReviewItem
from synthgate.moderation.policy import PolicyDocument, PolicyRule
from synthgate.moderation.screener import build_moderation
from tests.conftest import make_service
from tests.moderation.conftest import configure
from tests.web.conftest import login_as  # noqa: F401  (the console's login fixture)


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The provider's callback endpoint: a real HTTP server on 127.0.0.1."""
    box = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/synthgate/review"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def _png() -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(np.asarray(data.astronaut(), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def hold_output(
    gateway: Gateway,
    service: Service,
    text: str = "他的手机号是13812345678",
    media: list[MediaItem] | None = None,
    policy: PolicyDocument | None = None,
) -> str:
    """Screen an output as the pipeline does and hold it, as the output stage does on ``review``."""
    with gateway.db.session() as session:
        svc = session.get(Service, service.id)
        assert svc is not None
        moderation = build_moderation(session, svc, [])
        if policy is not None:
            moderation.policy = policy
        verdict = moderation.verdict(text, "output")
        assert verdict.action == "review", verdict.as_dict()
        item = review.hold(
            session,
            gateway.keys,
            service=svc,
            produce_id="01JTESTPRODUCEID0000000000",
            stage="output",
            verdict=verdict,
            text=text,
            media=media or [],
            policy=moderation.policy,
        )
        return item.id


def _events(gateway: Gateway, item_id: str) -> list[str]:
    with gateway.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent.event_type).where(AuditEvent.subject_id == item_id).order_by(AuditEvent.id)
            )
        )


def test_dsp10_held_output_is_released_by_a_reviewer_and_delivered_through_the_callback(
    gateway: Gateway, receiver: Receiver
) -> None:
    chat = make_service(gateway)
    svc = configure(gateway, chat.service, review_callback_url=receiver.url)
    photo = MediaItem.from_bytes(_png(), role="output")
    item_id = hold_output(gateway, svc, media=[photo])
    with gateway.db.session() as session:
        item = review.get(session, item_id)
        assert (item.status, item.category, item.priority, item.level) == ("pending", "A.4.6", 2, 1)
        assert item.due_at - item.created_at == dt.timedelta(minutes=240)
        assert "13812345678" not in (item.content or ""), "held content must be sealed at rest"
        assert item.media_digests[0]["sha256"] == photo.sha256 and len(item.media_digests[0]["pdq"]) == 64
        assert [i.id for i in review.queue(session, category="A.4.6")] == [item_id]

    with gateway.db.session() as session:
        review.claim(session, item_id, actor="operator:rita", role="reviewer")
    with gateway.db.session() as session, pytest.raises(Conflict, match="operator:rita is reviewing"):
        review.claim(session, item_id, actor="operator:sam", role="reviewer")
    with gateway.db.session() as session, pytest.raises(Conflict, match="claim the item first"):
        review.decide(
            session, gateway.keys, item_id, actor="operator:sam", role="reviewer", decision="release"
        )
    with gateway.db.session() as session:
        decided = review.decide(
            session,
            gateway.keys,
            item_id,
            actor="operator:rita",
            role="reviewer",
            decision="release",
            category="A.4.6",
            note="a public business number",
        )
        assert decided.callback_status == "pending"
    assert review.deliver_callback(gateway.db, gateway.keys, item_id) == "delivered"

    [(headers, body)] = receiver.received
    secret = gateway.keys.webhook_secret(chat.service.id)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-synthgate-signature"] == expected
    payload = json.loads(body)
    assert payload["event"] == "review.released" and payload["review_id"] == item_id
    assert payload["output"] == "他的手机号是13812345678"
    assert base64.b64decode(payload["media"][0]["data"]) == photo.data
    with gateway.db.session() as session:
        item = review.get(session, item_id)
        assert item.status == "released" and item.content is None, "content dropped after delivery"
        with pytest.raises(Conflict):
            review.claim(session, item_id, actor="operator:sam", role="reviewer")
    assert _events(gateway, item_id) == [
        "moderation.review.held",
        "moderation.review.claimed",
        "moderation.review.decided",
        "moderation.review.callback",
    ]


def test_dsp10_withheld_after_escalation_to_the_second_level_and_failed_callback_retried(
    gateway: Gateway, receiver: Receiver
) -> None:
    chat = make_service(gateway)
    svc = configure(gateway, chat.service, review_callback_url=receiver.url)
    item_id = hold_output(gateway, svc)
    with gateway.db.session() as session:
        review.claim(session, item_id, actor="operator:rita", role="reviewer")
        review.decide(
            session,
            gateway.keys,
            item_id,
            actor="operator:rita",
            role="reviewer",
            decision="escalate",
            note="?",
        )
    with gateway.db.session() as session, pytest.raises(Forbidden, match="second level"):
        review.claim(session, item_id, actor="operator:sam", role="reviewer")
    receiver.status = 503
    with gateway.db.session() as session:
        review.claim(session, item_id, actor="operator:cora", role="compliance")
        review.decide(
            session,
            gateway.keys,
            item_id,
            actor="operator:cora",
            role="compliance",
            decision="withhold",
            propose_term="13812345678",
        )
    assert review.deliver_callback(gateway.db, gateway.keys, item_id) == "failed"
    receiver.status = 200
    assert review.deliver_callback(gateway.db, gateway.keys, item_id) == "delivered"
    bodies = [json.loads(b) for _, b in receiver.received]
    assert [b["event"] for b in bodies] == ["review.withheld", "review.withheld"]
    assert "output" not in bodies[0], "withheld content never goes out"
    with gateway.db.session() as session:
        item = review.get(session, item_id)
        assert (item.level, item.status, item.callback_attempts) == (2, "withheld", 2)
        [term] = session.scalars(select(LibraryEntry).where(LibraryEntry.source == f"review:{item_id}"))
        assert (term.kind, term.status, term.admitted_by) == ("term", "pending", "operator:cora")


def test_dsp10_review_sla_and_priority_come_from_the_policy(gateway: Gateway) -> None:
    chat = make_service(gateway)
    policy = PolicyDocument(
        name="strict",
        rules=[PolicyRule(category="A.4.6", action="review")],
        review_sla_minutes=15,
        review_priority={"A.4.*": 1},
    )
    item_id = hold_output(gateway, chat.service, policy=policy)
    with gateway.db.session() as session:
        item = review.get(session, item_id)
        assert item.priority == 1 and item.due_at - item.created_at == dt.timedelta(minutes=15)
        assert not review.is_overdue(item)
        assert review.is_overdue(item, item.due_at + dt.timedelta(seconds=1))
        [count] = review.counts(session)
        assert (count.category, count.level, count.pending, count.overdue) == ("A.4.6", 1, 1, 0)


def test_dsp10_review_decision_can_propose_the_files_hash_for_a_bank(gateway: Gateway) -> None:
    chat = make_service(gateway)
    photo = MediaItem.from_bytes(_png(), role="output")
    item_id = hold_output(gateway, chat.service, media=[photo])
    with gateway.db.session() as session:
        review.claim(session, item_id, actor="operator:rita", role="reviewer")
        review.decide(
            session,
            gateway.keys,
            item_id,
            actor="operator:rita",
            role="reviewer",
            decision="withhold",
            category="A.1.6",
            add_to_bank="partner-x",
        )
        [entry] = session.scalars(select(LibraryEntry).where(LibraryEntry.source == f"review:{item_id}"))
        assert (entry.kind, entry.bank, entry.category, entry.status) == (
            "pdq",
            "partner-x",
            "A.1.6",
            "pending",
        )
        item = session.get(ReviewItem, item_id)
        assert item is not None and item.content is None, "no callback configured: content dropped at once"


# --- console over HTTP --------------------------------------------------------------------------------


def test_review_console_roles_and_csrf(
    client: TestClient,
    gateway: Gateway,
    login_as: Callable[[str], Any],  # noqa: F811
) -> None:
    chat = make_service(gateway)
    item_id = hold_output(gateway, chat.service)
    auditor = login_as("auditor")
    assert client.get("/console/review").status_code == 200
    page = client.get(f"/console/review/{item_id}")
    assert page.status_code == 200 and "13812345678" in page.text and "Claim" not in page.text
    denied = client.post(f"/console/review/{item_id}/claim", data={"csrf_token": auditor.csrf})
    assert denied.status_code == 403
    reviewer = login_as("reviewer")
    assert client.post(f"/console/review/{item_id}/claim", data={"csrf_token": "forged"}).status_code == 403
    ok = client.post(
        f"/console/review/{item_id}/claim", data={"csrf_token": reviewer.csrf}, follow_redirects=False
    )
    assert ok.status_code == 303
    bad = client.post(
        f"/console/review/{item_id}/decide", data={"csrf_token": reviewer.csrf, "decision": "maybe"}
    )
    assert bad.status_code == 422 and "release, withhold or escalate" in bad.text
    assert client.get("/console/review/does-not-exist").status_code == 404
    with gateway.db.session() as session:
        assert review.get(session, item_id).status == "pending", "a bad decision changes nothing"


def test_dsp10_a_refused_pipeline_output_is_held_from_its_context(
    gateway: Gateway, receiver: Receiver
) -> None:
    """What the gateway does on ``moderation.held``: the real output stage refuses, the context
    it leaves is enough to queue the item with the stage's own verdict."""
    from synthgate.errors import Refused
    from synthgate.gateway.pipeline import GenerationContext, OutputScreeningStage

    chat = make_service(gateway)
    svc = configure(gateway, chat.service, review_callback_url=receiver.url)
    ctx = GenerationContext(
        settings=gateway.settings,
        keys=gateway.keys,
        service=svc,
        external_user="u1",
        mode="two_phase",
        input_text="",
        output_text="请拨打13812345678联系他",
    )
    with gateway.db.session() as session, pytest.raises(Refused) as refused:
        OutputScreeningStage().run(ctx, session)
    assert refused.value.reason == "moderation.held"
    with gateway.db.session() as session:
        item = review.hold_for_context(session, gateway.keys, ctx, "output_screening")
        assert (item.stage, item.category, item.produce_id) == ("output", "A.4.6", ctx.produce_id)
        assert item.verdict["action"] == "review"
        assert review.held_content(gateway.keys, item)["text"] == "请拨打13812345678联系他"
