"""The consent gate (DSP-14) through the gateway's check phase, on real photos and real speech."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.config import Settings
from synthgate.consent import service as consent
from synthgate.consent.models import BiometricTemplate, Consent
from synthgate.consent.notifiers import CapturingNotifier
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.errors import Refused
from synthgate.gateway.sdk import Gateway
from tests.conftest import ServiceWithKey
from tests.consent import media
from tests.consent.conftest import grant_directly, item

PHONE = "+8613912345678"


def refused(
    gateway: Gateway, svc: ServiceWithKey, operation: str, *files: bytes, roles: tuple[str, ...] = ()
) -> Refused:
    items = [item(data, roles[i] if i < len(roles) else "input") for i, data in enumerate(files)]
    with pytest.raises(Refused) as caught:
        gateway.check("studio", "editor", prompt="edit", operation=operation, media=items)
    return caught.value


def test_dsp14_unconsented_face_is_refused_with_the_prompt(cgateway: Gateway, studio: ServiceWithKey) -> None:
    refusal = refused(cgateway, studio, "face.swap", media.astronaut_png())
    assert refusal.reason == "consent.missing"
    assert refusal.clause == "DSP-14"
    assert "inform the person" in refusal.message.lower() and "separate consent" in refusal.message
    assert "/v1/consents/requests" in refusal.message
    assert refusal.details["unconsented"] == 1


def test_dsp14_consented_face_passes_then_revocation_refuses(
    cgateway: Gateway, studio: ServiceWithKey, sms: CapturingSmsSender, notifier: CapturingNotifier
) -> None:
    granted = grant_directly(
        cgateway, sms, notifier, studio, phone=PHONE, operations=["face.swap"], photo=media.astronaut_png()
    )
    # A different copy of the same photo (JPEG, smaller) matches the enrolled template.
    probe = media.encode(
        np.asarray(Image.fromarray(media.astronaut()).resize((400, 400))), "JPEG", quality=85
    )
    result = cgateway.check(
        "studio", "editor", prompt="swap", operation="face.swap", media=[item(probe, "target")]
    )
    assert result.ticket_id
    # The consent covers face.swap only.
    assert refused(cgateway, studio, "face.manipulate", probe).reason == "consent.missing"
    with cgateway.db.session() as session:
        record = session.get(Consent, granted.consent_id)
        assert record is not None and consent.verify_signature(cgateway.keys, record)
        consent.revoke(session, record, actor="test")
    assert refused(cgateway, studio, "face.swap", probe).reason == "consent.missing"
    with cgateway.db.session() as session:
        assert session.scalars(select(BiometricTemplate)).all() == []
        kinds = [e.event_type for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "consent.granted" in kinds and "consent.revoked" in kinds


def test_dsp14_group_photo_with_one_unconsented_person_is_refused(
    cgateway: Gateway, studio: ServiceWithKey, sms: CapturingSmsSender, notifier: CapturingNotifier
) -> None:
    grant_directly(
        cgateway, sms, notifier, studio, phone=PHONE, operations=["face.swap"], photo=media.astronaut_png()
    )
    refusal = refused(cgateway, studio, "face.swap", media.encode(media.group_photo()))
    assert refusal.reason == "consent.missing"
    assert refusal.details["people"] == 2 and refusal.details["unconsented"] == 1
    assert "1 of whom" in refusal.message


def test_dsp14_no_face_in_a_face_operation(cgateway: Gateway, studio: ServiceWithKey) -> None:
    from skimage import data

    refusal = refused(cgateway, studio, "face.swap", media.encode(np.asarray(data.coffee())))
    assert refusal.reason == "consent.no_face"


def test_dsp14_tiny_face_is_not_passed(cgateway: Gateway, studio: ServiceWithKey) -> None:
    tiny = np.asarray(Image.fromarray(media.astronaut()).resize((160, 160)))
    refusal = refused(cgateway, studio, "face.swap", media.encode(tiny))
    assert refusal.reason in ("consent.face_too_small", "consent.no_face")


def test_dsp14_heavily_compressed_face_is_not_matched(
    cgateway: Gateway, studio: ServiceWithKey, sms: CapturingSmsSender, notifier: CapturingNotifier
) -> None:
    grant_directly(
        cgateway, sms, notifier, studio, phone=PHONE, operations=["face.swap"], photo=media.astronaut_png()
    )
    crushed = media.encode(media.astronaut(), "JPEG", quality=8)
    refusal = refused(cgateway, studio, "face.swap", crushed)
    assert refusal.reason in ("consent.low_quality", "consent.no_face")


def test_dsp14_face_in_a_plain_generation_input_needs_consent_too(
    cgateway: Gateway, studio: ServiceWithKey
) -> None:
    refusal = refused(cgateway, studio, "generate", media.astronaut_png())
    assert refusal.reason == "consent.missing"
    # A picture without people goes through.
    from skimage import data

    assert cgateway.check(
        "studio",
        "editor",
        prompt="restyle",
        operation="generate",
        media=[item(media.encode(np.asarray(data.coffee())))],
    ).ticket_id


def test_dsp14_voice_clone_needs_the_speakers_consent(
    cgateway: Gateway, studio: ServiceWithKey, sms: CapturingSmsSender, notifier: CapturingNotifier
) -> None:
    sample = media.speech("I agree that my voice may be used for this service, and only for it.", "en+f3")
    probe = media.speech("Please read the weather forecast for tomorrow morning in Beijing.", "en+f3")
    other = media.speech("Please read the weather forecast for tomorrow morning in Beijing.", "en+m3")
    assert refused(cgateway, studio, "voice.clone", probe).reason == "consent.missing"
    grant_directly(cgateway, sms, notifier, studio, phone=PHONE, operations=["voice.clone"], voice=sample)
    assert cgateway.check(
        "studio", "editor", prompt="clone", operation="voice.clone", media=[item(probe)]
    ).ticket_id
    assert refused(cgateway, studio, "voice.clone", other).reason == "consent.missing"


def test_dsp14_silence_or_music_is_no_voice(cgateway: Gateway, studio: ServiceWithKey) -> None:
    assert (
        refused(cgateway, studio, "voice.clone", media.wav_bytes(media.silence())).reason
        == "consent.no_voice"
    )
    refusal = refused(cgateway, studio, "voice.convert", media.wav_bytes(media.music()))
    assert refusal.reason == "consent.no_voice" and "music" in refusal.message
    assert refused(cgateway, studio, "voice.clone", media.astronaut_png()).reason == "consent.no_voice"


def test_dsp14_biometric_operations_are_configurable_per_service(
    consent_settings: Settings, sms: CapturingSmsSender
) -> None:
    from tests.conftest import make_service, ready_user

    gateway = Gateway(
        consent_settings.model_copy(update={"consent_media_policy": "operations"}), sms_sender=sms
    )
    try:
        svc = make_service(gateway, "poses", biometric_operations=["body.pose"])
        ready_user(gateway, sms, svc.service, "editor")
        # face.swap is not a biometric operation of this service, and the policy gates typed operations only.
        image = item(media.astronaut_png())
        assert gateway.check("poses", "editor", prompt="x", operation="face.swap", media=[image]).ticket_id
        with pytest.raises(Refused) as caught:
            gateway.check("poses", "editor", prompt="x", operation="body.pose", media=[image])
        assert caught.value.reason == "consent.missing"
    finally:
        gateway.close()
