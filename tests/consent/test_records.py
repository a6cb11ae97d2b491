"""Consent records (DSP-14): signed, text hash kept, templates encrypted, ended by revocation or expiry
in every worker; the request API's bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from synthgate.config import Settings
from synthgate.consent import service as consent
from synthgate.consent import texts
from synthgate.consent.matcher import TemplateCache, decode_vector
from synthgate.consent.models import BiometricTemplate, Consent, ConsentRequest, ConsentSubject
from synthgate.consent.notifiers import CapturingNotifier, install
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.errors import Conflict, InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import consent_expiry_purge
from synthgate.web.app import create_app
from tests.conftest import make_service
from tests.consent import media
from tests.consent.conftest import grant_directly

PHONE = "+8613512345678"


def test_dsp14_consent_is_signed_and_keeps_the_text_hash(gateway: Gateway, sms: CapturingSmsSender) -> None:
    svc = make_service(gateway, "studio")
    granted = grant_directly(
        gateway,
        sms,
        CapturingNotifier(),
        svc,
        phone=PHONE,
        operations=["face.swap"],
        photo=media.astronaut_png(),
    )
    with gateway.db.session() as session:
        record = session.get(Consent, granted.consent_id)
        assert record is not None
        assert consent.verify_signature(gateway.keys, record)
        shown = texts.render(texts.current(), service=svc.service.name, operations=["face.swap"])
        import hashlib

        assert record.text_sha256 == hashlib.sha256(shown.encode()).hexdigest()
        assert record.text_version == texts.CURRENT_VERSION
        # Widening the scope in the database breaks the signature.
        record.operations = ["face.swap", "face.manipulate"]
        assert not consent.verify_signature(gateway.keys, record)
        session.rollback()


def test_dsp14_templates_encrypted_raw_media_not_kept(gateway: Gateway, sms: CapturingSmsSender) -> None:
    svc = make_service(gateway, "studio")
    granted = grant_directly(
        gateway,
        sms,
        CapturingNotifier(),
        svc,
        phone=PHONE,
        operations=["face.swap"],
        photo=media.astronaut_png(),
    )
    with gateway.db.session() as session:
        template = session.scalars(select(BiometricTemplate)).one()
        assert template.media_enc is None
        vector = decode_vector(gateway.keys, template.vector_enc, "face")
        assert vector.shape == (128,)
        assert vector.tobytes() not in template.vector_enc.encode()
        subject = session.scalars(select(ConsentSubject)).one()
        assert "13512345678" not in subject.contact_enc
        assert consent.find_subject(session, gateway.keys, "13512345678")[0].id == subject.id
        assert granted.consent_id == template.consent_id


def test_dsp14_raw_media_kept_only_when_configured(settings: Settings, sms: CapturingSmsSender) -> None:
    gateway = Gateway(settings.model_copy(update={"consent_keep_raw_media": True}), sms_sender=sms)
    try:
        svc = make_service(gateway, "studio")
        grant_directly(
            gateway,
            sms,
            CapturingNotifier(),
            svc,
            phone=PHONE,
            operations=["face.swap"],
            photo=media.astronaut_png(),
        )
        with gateway.db.session() as session:
            template = session.scalars(select(BiometricTemplate)).one()
            assert template.media_enc and "iVBORw0KGgo" not in template.media_enc  # no base64 PNG header
            import base64

            kept = base64.b64decode(gateway.keys.decrypt(template.media_enc, "consent-media"))
            assert kept == media.astronaut_png()
    finally:
        gateway.close()


def test_dsp14_revocation_is_seen_by_another_worker_on_its_next_request(
    gateway: Gateway, sms: CapturingSmsSender
) -> None:
    svc = make_service(gateway, "studio")
    granted = grant_directly(
        gateway,
        sms,
        CapturingNotifier(),
        svc,
        phone=PHONE,
        operations=["face.swap"],
        photo=media.astronaut_png(),
    )
    other_worker = TemplateCache()  # a second process holds its own decrypted matrix
    probe = np.ones(128, np.float32)
    with gateway.db.session() as session:
        assert len(other_worker.get(session, gateway.keys, svc.service.id).index("face").consent_ids) == 1
        record = session.get(Consent, granted.consent_id)
        assert record is not None
        consent.revoke(session, record, actor="consent-subject:x")
    with gateway.db.session() as session:
        index = other_worker.get(session, gateway.keys, svc.service.id).index("face")
        assert len(index.consent_ids) == 0 and index.best(probe, "face.swap") is None


def test_dsp14_expiry_stops_matching_and_the_job_deletes_templates(
    gateway: Gateway, sms: CapturingSmsSender
) -> None:
    svc = make_service(gateway, "studio")
    granted = grant_directly(
        gateway,
        sms,
        CapturingNotifier(),
        svc,
        phone=PHONE,
        operations=["face.swap"],
        photo=media.astronaut_png(),
    )
    cache = TemplateCache()
    with gateway.db.session() as session:
        index = cache.get(session, gateway.keys, svc.service.id).index("face")
        vector = decode_vector(
            gateway.keys, session.scalars(select(BiometricTemplate)).one().vector_enc, "face"
        )
        assert index.best(vector, "face.swap") is not None
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
        assert index.best(vector, "face.swap", now=later) is None  # past its date, before any purge
        session.execute(
            update(Consent).where(Consent.id == granted.consent_id).values(expires_at=dt.datetime.now(dt.UTC))
        )
    assert consent_expiry_purge(gateway) == 1
    with gateway.db.session() as session:
        record = session.get(Consent, granted.consent_id)
        assert record is not None and record.status == "expired"
        assert session.scalars(select(BiometricTemplate)).all() == []
    assert consent_expiry_purge(gateway) == 0


def test_dsp14_grant_checks_scope_text_version_and_enrolment(
    gateway: Gateway, sms: CapturingSmsSender
) -> None:
    svc = make_service(gateway, "studio")
    notifier = CapturingNotifier()
    with gateway.db.session() as session:
        started = consent.start_request(
            session, gateway.keys, gateway.settings, notifier, svc.service,
            requested_by="editor", contact=PHONE, operations=["face.swap", "voice.clone"],
        )  # fmt: skip
        request_id = started.request.id
    limits = consent.MediaLimits.from_settings(gateway.settings)
    face = consent.enrol_face(media.astronaut_png(), limits)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    with gateway.db.session() as session:
        request = session.get(ConsentRequest, request_id)
        assert request is not None
        with pytest.raises(InvalidInput, match="only consent to operations that were asked"):
            consent.grant(session, gateway.keys, gateway.settings, request, operations=["face.manipulate"],
                          until=until, text_version="1", enrolments=[face])  # fmt: skip
        with pytest.raises(Conflict, match="consent text changed"):
            consent.grant(session, gateway.keys, gateway.settings, request, operations=["face.swap"],
                          until=until, text_version="0", enrolments=[face])  # fmt: skip
        with pytest.raises(InvalidInput, match="voice sample"):
            consent.grant(session, gateway.keys, gateway.settings, request, operations=["voice.clone"],
                          until=until, text_version="1", enrolments=[face])  # fmt: skip
        with pytest.raises(InvalidInput, match="at most"):
            consent.grant(session, gateway.keys, gateway.settings, request, operations=["face.swap"],
                          until=until + dt.timedelta(days=400), text_version="1",
                          enrolments=[face])  # fmt: skip
    # Enrolment bad input: no face, two faces, silence, music.
    with pytest.raises(InvalidInput, match="no face"):
        from skimage import data

        consent.enrol_face(media.encode(np.asarray(data.coffee())), limits)
    with pytest.raises(InvalidInput, match="more than one face"):
        consent.enrol_face(media.encode(media.group_photo()), limits)
    with pytest.raises(InvalidInput, match="too little speech"):
        consent.enrol_voice(media.wav_bytes(media.silence()), limits)
    with pytest.raises(InvalidInput, match="music"):
        consent.enrol_voice(media.wav_bytes(media.music()), limits)


def test_dsp14_request_api_bad_input_and_no_link_in_the_answer(settings: Settings, gateway: Gateway) -> None:
    notifier = CapturingNotifier()
    install(gateway, notifier)
    svc = make_service(gateway, "studio")
    accounts_only = make_service(gateway, "other", scopes=["accounts"])
    with TestClient(create_app(settings, gateway)) as client:
        url = "/v1/consents/requests"
        body = {"user": "editor", "contact": PHONE, "operations": ["face.swap"]}
        assert client.post(url, json=body).status_code == 401
        assert client.post(url, json=body, headers=accounts_only.headers).status_code == 403
        bad_phone = client.post(url, json={**body, "contact": "12345"}, headers=svc.headers)
        assert bad_phone.status_code == 422 and bad_phone.json()["error"]["field"] == "contact"
        bad_op = client.post(url, json={**body, "operations": ["text.summarise"]}, headers=svc.headers)
        assert bad_op.status_code == 422 and bad_op.json()["error"]["field"] == "operations"
        assert client.post(url, json={**body, "operations": []}, headers=svc.headers).status_code == 422
        assert notifier.sent == []
        ok = client.post(url, json=body, headers=svc.headers)
        assert ok.status_code == 201 and ok.json()["status"] == "sent"
        token = notifier.last_link.rsplit("/", 1)[1]
        assert token not in ok.text
        assert client.get(f"{url}/{ok.json()['id']}", headers=accounts_only.headers).status_code == 403
        for _ in range(consent.REQUESTS_PER_SUBJECT_PER_DAY - 1):
            assert client.post(url, json=body, headers=svc.headers).status_code == 201
        assert client.post(url, json=body, headers=svc.headers).status_code == 429
        # An unknown or expired link is a clear page, not a crash.
        assert client.get("/consent/not-a-real-token").status_code == 404
        with gateway.db.session() as session:
            session.execute(update(ConsentRequest).values(expires_at=dt.datetime.now(dt.UTC)))
        gone = client.post(f"/consent/{token}/code")
        assert gone.status_code == 409 and "expired" in gone.text


def test_dsp14_notifiers_are_a_registry_with_a_log_default(
    settings: Settings, sms: CapturingSmsSender
) -> None:
    from synthgate.consent.notifiers import LogNotifier, SmsNotifier, notifier_for, notifiers

    assert {"log", "sms"} <= set(notifiers.names())
    gateway = Gateway(settings, sms_sender=sms)
    try:
        assert isinstance(notifier_for(gateway), LogNotifier)
    finally:
        gateway.close()
    assert isinstance(notifiers.create("sms", settings), SmsNotifier)
