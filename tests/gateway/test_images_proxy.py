"""``POST /v1/images/generations`` through the proxy, against a real upstream process on loopback."""

from __future__ import annotations

import base64
import hashlib
import io

import soundfile
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.provenance.models import Generation
from tests.conftest import make_service, ready_user


def test_dsp16_image_proxy_delivers_a_recorded_picture(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    images = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, images.service)
    response = client.post(
        "/v1/images/generations",
        json={"prompt": "a lighthouse at dusk", "size": "256x192", "user": "u1"},
        headers=images.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    data = base64.b64decode(body["data"][0]["b64_json"])
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG" and picture.size == (256, 192)
    produce_id = body["synthgate"]["produce_id"]
    assert response.headers["X-Synthgate-Produce-Id"] == produce_id
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert record is not None
        assert (record.mode, record.medium, record.operation) == ("proxy", "image", "image.generate")
        assert record.output_sha256 == hashlib.sha256(data).hexdigest()
        assert record.input_sha256 == hashlib.sha256(b"a lighthouse at dusk").hexdigest()


def test_image_proxy_refuses_urls_and_unverified_users(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    images = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, images.service)
    as_url = client.post(
        "/v1/images/generations",
        json={"prompt": "x", "user": "u1", "response_format": "url"},
        headers=images.headers,
    )
    assert as_url.status_code == 422
    assert as_url.json()["error"]["param"] == "response_format"

    stranger = client.post(
        "/v1/images/generations", json={"prompt": "x", "user": "nobody"}, headers=images.headers
    )
    assert stranger.status_code == 403
    assert stranger.json()["error"]["code"] == "identity.unknown_account"

    bad_size = client.post(
        "/v1/images/generations", json={"prompt": "x", "user": "u1", "size": "huge"}, headers=images.headers
    )
    assert bad_size.status_code == 400  # the model's own client error, passed through
    with gateway.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 0


def test_dsp16_speech_proxy_delivers_recorded_audio(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender, upstream: str
) -> None:
    speech = make_service(gateway, upstream_url=upstream)
    ready_user(gateway, sms, speech.service)
    response = client.post(
        "/v1/audio/speech",
        json={"model": "tts", "input": "hello from the gateway", "voice": "alloy", "response_format": "wav"},
        headers={**speech.headers, "X-Synthgate-User": "u1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    info = soundfile.info(io.BytesIO(response.content))
    assert info.format == "WAV" and info.duration > 0.5
    produce_id = response.headers["X-Synthgate-Produce-Id"]
    with gateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert record is not None
        assert (record.medium, record.operation) == ("audio", "audio.speech")
        assert record.output_sha256 == hashlib.sha256(response.content).hexdigest()

    unlabelable = client.post(
        "/v1/audio/speech",
        json={"input": "x", "user": "u1", "response_format": "opus"},
        headers=speech.headers,
    )
    assert unlabelable.status_code == 422
    assert unlabelable.json()["error"]["param"] == "response_format"
