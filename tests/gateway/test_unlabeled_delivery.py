"""LM-9: the explicit label left off at the user's request, only where the agreement allows, and logged."""

from __future__ import annotations

import base64
import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.identity import service as identity
from synthgate.provenance.models import Generation
from tests.conftest import ServiceWithKey, ready_user
from tests.gateway.test_media_io import png


def allow_unlabeled(gateway: Gateway, service: Service) -> None:
    with gateway.db.session() as session:
        row = session.get(Service, service.id)
        assert row is not None
        governance.update_service_settings(session, row, {"unlabeled_delivery": True}, actor="operator:alice")


def test_lm9_waiver_refused_unless_the_agreement_puts_the_duty_on_users(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    refused = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "a poem", "without_explicit_label": True},
        headers=chat.headers,
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["reason"], error["clause"]) == ("labeling.waiver_not_allowed", "LM-9")


def test_lm9_unlabeled_delivery_is_logged_with_its_recipient(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    with gateway.db.session() as session:
        account = identity.get_account_or_none(session, chat.service, "u1")
        assert account is not None
        account_id = account.id
    allow_unlabeled(gateway, chat.service)
    checked = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "a poem", "without_explicit_label": True},
        headers=chat.headers,
    )
    assert checked.status_code == 201, checked.text
    done = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"output": "床前明月光", "media": [{"data": base64.b64encode(png((256, 256))).decode()}]},
        headers=chat.headers,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["output"] == "床前明月光"  # no explicit label on the text …
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["media"][0]["data"]))).convert("RGB"))
    original = np.asarray(Image.open(io.BytesIO(png((256, 256)))).convert("RGB"))
    # … nor drawn on the picture: only the invisible watermark's few levels of change remain.
    assert np.abs(picture.astype(int) - original.astype(int)).max() <= 8
    assert body["labels"]["implicit"]["ContentProducer"]  # the metadata label stays
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == body["produce_id"]))
        assert record is not None
        assert record.delivered_unlabeled and record.unlabeled_recipient == account_id

    # Without the request, the same service labels as usual and logs nothing unlabeled.
    checked = client.post("/v1/generations", json={"user": "u1", "input": "a poem"}, headers=chat.headers)
    done = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"output": "床前明月光"},
        headers=chat.headers,
    )
    assert done.json()["output"] != "床前明月光"
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == done.json()["produce_id"]))
        assert record is not None and not record.delivered_unlabeled and record.unlabeled_recipient is None
