"""The ``media_label`` pipeline stage and the label object of plain-text answers, through the API.

Every delivered file is read back by real readers: synthgate's metadata reader and binding check,
c2pa-python against the development trust anchor, the watermark detector with the service's key,
the decoded pixels / samples for the explicit label. Text answers carry the Annex E object in the
response field ``labels.implicit`` and in the ``X-AIGC-Label`` header, bound to the text delivered.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from synthgate.config import Settings
from synthgate.devtools.demo import DEMO_PROVIDER_CODE, CapturingSmsSender
from synthgate.gateway.models import Ticket
from synthgate.gateway.sdk import Gateway
from synthgate.labeling import c2pa
from synthgate.labeling.answer import HEADER
from synthgate.labeling.implicit import AigcLabel, check_binding, read_labels
from synthgate.labeling.implicit.binding import text_digest
from synthgate.labeling.inspect import inspect
from synthgate.labeling.service import binding_verifiers
from synthgate.labeling.watermark import detect_image_bytes
from synthgate.provenance.digests import watermark_payload
from synthgate.provenance.models import Generation
from synthgate.web.app import create_app
from tests.conftest import ServiceWithKey, make_service, ready_user

STAGES = [
    "identity",
    "rules",
    "input_screening",
    "output_screening",
    "explicit_label",
    "media_label",
    "record",
]


@pytest.fixture
def lsettings(settings: Settings) -> Settings:
    c2pa.make_dev_chain(settings.data_dir / "c2pa")
    return settings.model_copy(update={"stages": STAGES})


@pytest.fixture
def lgateway(lsettings: Settings, sms: CapturingSmsSender) -> Iterator[Gateway]:
    gw = Gateway(lsettings, sms_sender=sms)
    yield gw
    gw.close()


@pytest.fixture
def lclient(lsettings: Settings, lgateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(lsettings, lgateway)) as test_client:
        yield test_client


@pytest.fixture
def studio(lgateway: Gateway, sms: CapturingSmsSender) -> ServiceWithKey:
    svc = make_service(lgateway, "studio")
    ready_user(lgateway, sms, svc.service)
    return svc


def _png(size: tuple[int, int] = (320, 240)) -> bytes:
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1) + rng.normal(0, 6, (size[1], size[0], 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def _wav(seconds: float = 1.5, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _generate(
    client: TestClient, svc: ServiceWithKey, files: list[bytes], *, operation: str = "generate"
) -> dict:  # type: ignore[type-arg]
    checked = client.post(
        "/v1/generations",
        json={"user": "u1", "input": "draw a harbour", "medium": "image", "operation": operation},
        headers=svc.headers,
    )
    assert checked.status_code == 201, checked.text
    done = client.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"media": [{"data": _b64(f)} for f in files]},
        headers=svc.headers,
    )
    assert done.status_code == 200, done.text
    return done.json()  # type: ignore[no-any-return]


def test_lm4_lm5_gbe_media_label_stage_labels_every_delivered_file(
    lclient: TestClient, lgateway: Gateway, studio: ServiceWithKey
) -> None:
    original_png, original_wav = _png(), _wav()
    body = _generate(lclient, studio, [original_png, original_wav])
    produce_id = body["produce_id"]
    png_out, wav_out = (base64.b64decode(m["data"]) for m in body["media"])
    verifiers = binding_verifiers(lgateway.keys)
    anchors = (lgateway.settings.data_dir / "c2pa" / "root.pem").read_bytes()

    for data, kind in ((png_out, "png"), (wav_out, "wav")):
        # GB-E / GB-6.1: exactly one metadata label, ours, naming this generation, bound to the content.
        [found] = read_labels(data)
        assert found.label is not None
        assert (found.label.ContentProducer, found.label.ProduceID) == (DEMO_PROVIDER_CODE, produce_id)
        assert check_binding(found.label, data, verifiers) == "bound"
        # C2PA, validated by c2pa-python against the configured anchor, carries the same object.
        manifest = c2pa.read(data, kind, anchors)
        assert manifest.state == "Trusted", manifest.failures
        assert manifest.ai_generated and manifest.aigc == found.label.to_dict()
        assert inspect(data, verifier=verifiers).tier == "generated"

    # LM-4 explicit label in the file itself: the picture changed only in a corner band, and the
    # audio grew by the rhythm cue at the start at the same rate and channel count.
    before = np.asarray(Image.open(io.BytesIO(original_png)).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(io.BytesIO(png_out)).convert("RGB"), dtype=np.int16)
    changed = np.abs(after - before).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    assert ys.size and ys.min() > 240 * 0.7 and xs.min() > 320 * 0.3, "label drawn at the bottom right"
    info_in, info_out = sf.info(io.BytesIO(original_wav)), sf.info(io.BytesIO(wav_out))
    assert (info_out.samplerate, info_out.channels) == (info_in.samplerate, info_in.channels)
    assert info_out.frames > info_in.frames

    # LM-5 watermark: the service's key reads back the payload that names this generation.
    detection = detect_image_bytes(png_out, lgateway.keys.watermark_key(studio.service.id))
    assert detection.detected and detection.payload == watermark_payload(produce_id).hex()

    labels = body["labels"]
    assert [m["container"] for m in labels["media"]] == ["png", "wav"]
    assert all(m["explicit"] == "applied" and m["c2pa"] == "signed" for m in labels["media"])
    assert labels["media"][0]["watermark"]["embedded"] is True
    assert labels["explicit_media"]["items"] == 2
    # The single-label header names the first file's object.
    with lgateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == produce_id))
        assert record is not None
        assert record.delivered_unlabeled is False
        assert record.output_sha256 == body["media"][0]["sha256"]
        assert record.labels["media"][1]["label"]["ProduceID"] == produce_id


def test_dsp17_c2pa_edit_operations_are_declared_as_edits(
    lclient: TestClient, lgateway: Gateway, studio: ServiceWithKey
) -> None:
    body = _generate(lclient, studio, [_png((160, 120))], operation="image.edit")
    data = base64.b64decode(body["media"][0]["data"])
    manifest = c2pa.read(data, "png", (lgateway.settings.data_dir / "c2pa" / "root.pem").read_bytes())
    # c2pa-python's edit intent records the opened parent first, then our edit.
    edited = [a for a in manifest.actions if a["action"] == "c2pa.edited"]
    assert edited and edited[0]["digitalSourceType"] == c2pa.COMPOSITE
    assert not any(a["action"] == "c2pa.created" for a in manifest.actions)


def test_gbe_an_unlabelable_output_is_refused_and_nothing_is_delivered(
    lsettings: Settings, sms: CapturingSmsSender
) -> None:
    """The stage's own guarantee, without output screening in front of it (which blocks
    undecodable files on its own): a file it cannot label stops the completion with a clear 4xx."""
    stages = [name for name in STAGES if name != "output_screening"]
    gateway = Gateway(lsettings.model_copy(update={"stages": stages}), sms_sender=sms)
    try:
        svc = make_service(gateway, "studio")
        ready_user(gateway, sms, svc.service)
        with TestClient(create_app(gateway.settings, gateway)) as client:
            checked = client.post(
                "/v1/generations", json={"user": "u1", "input": "x", "medium": "image"}, headers=svc.headers
            )
            ticket = checked.json()["ticket_id"]
            truncated = _png()[:-400]
            done = client.post(
                f"/v1/generations/{ticket}/complete",
                json={"media": [{"data": _b64(truncated)}]},
                headers=svc.headers,
            )
        assert 400 <= done.status_code < 500, done.text
        assert "truncated" in done.text or "corrupt" in done.text
        with gateway.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Generation)) == 0
            stored = session.get(Ticket, ticket)
            # Nothing was delivered; the ticket stays open for a good file.
            assert stored is not None and stored.completed_at is None
    finally:
        gateway.close()


def test_gbe_text_answer_carries_the_label_object_in_field_and_header(
    lclient: TestClient, lgateway: Gateway, studio: ServiceWithKey
) -> None:
    checked = lclient.post("/v1/generations", json={"user": "u1", "input": "hello"}, headers=studio.headers)
    done = lclient.post(
        f"/v1/generations/{checked.json()['ticket_id']}/complete",
        json={"output": "海港的早晨很安静。"},
        headers=studio.headers,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    field = body["labels"]["implicit"]
    assert json.loads(done.headers[HEADER]) == field
    label = AigcLabel(**field)  # validates the Annex E character set and the provider code
    assert (label.Label, label.ContentProducer, label.ProduceID) == (
        "1",
        DEMO_PROVIDER_CODE,
        body["produce_id"],
    )
    verifiers = binding_verifiers(lgateway.keys)
    # Bound to the text as delivered, explicit label included; any edit shows.
    assert check_binding(label, b"", verifiers, digest=text_digest(body["output"])) == "bound"
    assert check_binding(label, b"", verifiers, digest=text_digest(body["output"] + "!")) == "content_changed"
    with lgateway.db.session() as session:
        record = session.scalar(select(Generation).where(Generation.produce_id == body["produce_id"]))
        assert record is not None and record.labels["implicit"] == field


def test_gbe_proxy_answers_carry_the_label_header_plain_and_streamed(
    lgateway: Gateway, lsettings: Settings, sms: CapturingSmsSender, upstream: str
) -> None:
    svc = make_service(lgateway, "proxied", upstream_url=upstream)
    ready_user(lgateway, sms, svc.service)
    with TestClient(create_app(lsettings, lgateway)) as client:
        plain = client.post(
            "/v1/chat/completions",
            json={"model": "m", "user": "u1", "messages": [{"role": "user", "content": "hi"}]},
            headers=svc.headers,
        )
        assert plain.status_code == 200, plain.text
        answer = plain.json()
        field = answer["synthgate"]["labels"]["implicit"]
        assert json.loads(plain.headers[HEADER]) == field
        text = answer["choices"][0]["message"]["content"]
        verifiers = binding_verifiers(lgateway.keys)
        assert check_binding(AigcLabel(**field), b"", verifiers, digest=text_digest(text)) == "bound"

        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "m",
                "user": "u1",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers=svc.headers,
        ) as streamed:
            early = json.loads(streamed.headers[HEADER])
            events = [line[5:].strip() for line in streamed.iter_lines() if line.startswith("data:")]
        chunks = [json.loads(e) for e in events if e != "[DONE]"]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        final = chunks[-1]["synthgate"]["labels"]["implicit"]
        # The header leaves before the text exists: production fields now, the bound object at the end.
        assert early["ProduceID"] == final["ProduceID"] and early["ReservedCode1"] == ""
        assert check_binding(AigcLabel(**final), b"", verifiers, digest=text_digest(text)) == "bound"


def test_lm4_gbe_image_proxy_delivers_a_labeled_picture_with_its_label_header(
    lgateway: Gateway, lsettings: Settings, sms: CapturingSmsSender, upstream: str
) -> None:
    svc = make_service(lgateway, "painter", upstream_url=upstream)
    ready_user(lgateway, sms, svc.service)
    with TestClient(create_app(lsettings, lgateway)) as client:
        response = client.post(
            "/v1/images/generations",
            json={"prompt": "a lighthouse at dusk", "size": "256x192", "user": "u1"},
            headers=svc.headers,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    data = base64.b64decode(body["data"][0]["b64_json"])
    [found] = read_labels(data)
    assert found.label is not None and found.label.ProduceID == body["synthgate"]["produce_id"]
    assert json.loads(response.headers[HEADER]) == found.label.to_dict()
    assert check_binding(found.label, data, binding_verifiers(lgateway.keys)) == "bound"
    assert body["synthgate"]["labels"]["media"][0]["explicit"] == "applied"
