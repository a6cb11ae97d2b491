"""Files through the two-phase API: sniffed inputs and outputs, digests in the record, clear errors."""

from __future__ import annotations

import base64
import hashlib
import io
import random

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from synthgate.config import Settings
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.models import Ticket
from synthgate.gateway.sdk import Gateway
from synthgate.media import MediaItem
from synthgate.provenance.models import Generation
from tests.conftest import ServiceWithKey, ready_user


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_gai11_image_in_and_out_recorded_by_digest_only(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    source = png()
    checked = client.post(
        "/v1/generations",
        json={
            "user": "u1",
            "input": "make it brighter",
            "medium": "image",
            "operation": "image.edit",
            "media": [{"data": b64(source), "role": "source"}],
        },
        headers=chat.headers,
    )
    assert checked.status_code == 201, checked.text
    ticket = checked.json()

    result = png(colour=(200, 220, 240))
    done = client.post(
        f"/v1/generations/{ticket['ticket_id']}/complete",
        json={"media": [{"data": b64(result)}]},
        headers=chat.headers,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["output"] is None
    [delivered] = body["media"]
    data = base64.b64decode(delivered["data"])
    assert delivered["container"] == "png" and delivered["medium"] == "image"
    assert delivered["sha256"] == hashlib.sha256(data).hexdigest()
    assert Image.open(io.BytesIO(data)).size == (64, 48)  # a real PNG, read back by a real reader

    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == body["produce_id"]))
        assert record is not None
        assert record.operation == "image.edit" and record.medium == "image"
        assert record.output_sha256 == delivered["sha256"]
        # Only digests of the input file are kept, never the file.
        assert record.input_media == [
            {
                "sha256": hashlib.sha256(source).hexdigest(),
                "container": "png",
                "medium": "image",
                "role": "source",
            }
        ]
        assert record.input_sha256 == hashlib.sha256(b"make it brighter").hexdigest()

    shown = client.get(f"/v1/generations/{body['produce_id']}", headers=chat.headers)
    assert shown.status_code == 200 and shown.json()["operation"] == "image.edit"


def test_sdk_takes_bytes_and_items(gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey) -> None:
    ready_user(gateway, sms, chat.service)
    checked = gateway.check(
        chat.service.slug, "u1", media=[MediaItem.from_bytes(png(), role="reference")], medium="image"
    )
    done = gateway.complete(chat.service.slug, checked.ticket_id, "a caption", media=[png((32, 32))])
    assert done.output is not None and done.output.startswith("a caption")
    assert len(done.media) == 1 and done.media[0].container == "png"


@pytest.mark.parametrize(
    ("media", "status", "message"),
    [
        ([{"data": "not base64!!"}], 422, "not valid base64"),
        ([{"data": b64(b"\x00\x01\x02\x03 nothing known")}], 415, "unrecognised file format"),
        ([{"data": b64(png()), "role": "Bad Role"}], 422, "role"),
    ],
)
def test_bad_media_is_a_clear_4xx_and_nothing_is_written(
    client: TestClient,
    gateway: Gateway,
    sms: CapturingSmsSender,
    chat: ServiceWithKey,
    media: list[dict[str, str]],
    status: int,
    message: str,
) -> None:
    ready_user(gateway, sms, chat.service)
    answer = client.post(
        "/v1/generations", json={"user": "u1", "input": "x", "media": media}, headers=chat.headers
    )
    assert answer.status_code == status, answer.text
    assert message in answer.text
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_too_many_files_and_empty_completion_refused(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, settings: Settings
) -> None:
    ready_user(gateway, sms, chat.service)
    many = [{"data": b64(png())}] * (settings.max_media_items + 1)
    answer = client.post("/v1/generations", json={"user": "u1", "media": many}, headers=chat.headers)
    assert answer.status_code == 422 and "at most" in answer.text

    checked = client.post("/v1/generations", json={"user": "u1", "input": "x"}, headers=chat.headers)
    empty = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete", json={}, headers=chat.headers
    )
    assert empty.status_code == 422
    # The ticket is still open: a correct completion goes through.
    fixed = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete", json={"output": "y"}, headers=chat.headers
    )
    assert fixed.status_code == 200


def test_media_routes_have_their_own_body_limit(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, settings: Settings
) -> None:
    from synthgate.web.app import create_app

    settings.max_body_bytes = 2_000
    settings.max_upload_body_bytes = 400_000
    ready_user(gateway, sms, chat.service)
    noisy = Image.frombytes("RGB", (120, 120), random.Random(7).randbytes(120 * 120 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    assert 2_000 < len(buffer.getvalue()) < 300_000
    with TestClient(create_app(settings, gateway)) as client:
        fine = client.post(
            "/v1/generations",
            json={"user": "u1", "input": "x", "media": [{"data": b64(buffer.getvalue())}]},
            headers=chat.headers,
        )
        assert fine.status_code == 201, fine.text
        small_route = client.post("/v1/accounts", content=b"{" + b" " * 3_000 + b"}", headers=chat.headers)
        assert small_route.status_code == 413
        huge = client.post(
            "/v1/generations",
            json={"user": "u1", "media": [{"data": "A" * 500_000}]},
            headers=chat.headers,
        )
        assert huge.status_code == 413


def test_operation_names_follow_the_one_grammar_governance_declares(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    from synthgate.governance import service as governance

    ready_user(gateway, sms, chat.service)
    with gateway.db.session() as session:
        row = governance.get_service(session, chat.service.id)
        # A function the service can declare (DSP-20) is an operation a request can name.
        governance.declare_function(
            session, row, operation="image.edit.inpaint", title="Inpaint", public_facing=False, actor="t"
        )
    ok = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "x", "operation": "image.edit.inpaint"},
        headers=chat.headers,
    )
    assert ok.status_code == 201, ok.text
    for bad in ("Face.Swap", "face-swap", "face..swap", "x" * 65):
        answer = client.post(
            "/v1/generations", json={"user": "u1", "input": "x", "operation": bad}, headers=chat.headers
        )
        assert answer.status_code == 422, bad
