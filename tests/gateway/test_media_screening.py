"""Files screened in the pipeline (DSP-10): banked content refused in and out, held outputs queued."""

from __future__ import annotations

import base64
import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.models import Refusal, Ticket
from synthgate.gateway.sdk import Gateway
from synthgate.moderation import review
from synthgate.moderation.models import ReviewItem
from tests.conftest import ServiceWithKey, ready_user
from tests.gateway.test_media_io import png
from tests.moderation.conftest import publish_terms


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_dsp10_banked_file_is_refused_as_input_and_as_output(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    banned = png(colour=(10, 200, 30))
    publish_terms(gateway, ("sha256", hashlib.sha256(banned).hexdigest(), "A.1.6"))
    ready_user(gateway, sms, chat.service)

    as_input = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "edit this", "media": [{"data": b64(banned), "role": "source"}]},
        headers=chat.headers,
    )
    assert as_input.status_code == 403, as_input.text
    error = as_input.json()["error"]
    assert (error["reason"], error["clause"], error["category"]) == ("moderation.blocked", "DSP-10", "A.1.6")
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        assert session.scalar(select(Refusal.stage)) == "input_screening_media"

    checked = client.post("/v1/generations", json={"user": "u1", "input": "draw"}, headers=chat.headers)
    ticket = checked.json()["ticket_id"]
    as_output = client.post(
        f"/v1/generations/{ticket}/complete", json={"media": [{"data": b64(banned)}]}, headers=chat.headers
    )
    assert as_output.status_code == 403 and as_output.json()["error"]["reason"] == "moderation.blocked"
    # Another picture goes through.
    checked = client.post("/v1/generations", json={"user": "u1", "input": "draw"}, headers=chat.headers)
    fine = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"media": [{"data": b64(png(colour=(10, 200, 31)))}]},
        headers=chat.headers,
    )
    assert fine.status_code == 200, fine.text


def test_dsp10_held_output_waits_in_the_review_queue(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    checked = client.post(
        "/v1/generations", json={"user": "u1", "input": "who to call"}, headers=chat.headers
    )
    ticket = checked.json()
    # Personal information in an output is held for a person to decide (the default policy).
    held = client.post(
        f"/v1/generations/{ticket['ticket_id']}/complete",
        json={"output": "call 13800138000 any time"},
        headers=chat.headers,
    )
    assert held.status_code == 403, held.text
    error = held.json()["error"]
    assert error["reason"] == "moderation.held" and error["review_id"]
    with gateway.db.session() as session:
        item = session.get(ReviewItem, error["review_id"])
        assert item is not None
        assert (item.produce_id, item.stage, item.service_id) == (
            ticket["produce_id"],
            "output",
            chat.service.id,
        )
        # The held text is sealed at rest and opens with the key store.
        assert "13800138000" not in str(item.content)
        assert review.held_content(gateway.keys, item)["text"] == "call 13800138000 any time"
