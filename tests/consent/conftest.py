from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from synthgate.config import Settings
from synthgate.consent import service as consent
from synthgate.consent.matcher import cache
from synthgate.consent.models import Consent, ConsentRequest
from synthgate.consent.notifiers import CapturingNotifier, install
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.media import MediaItem
from synthgate.media.limits import MediaLimits
from synthgate.web.app import create_app
from tests.conftest import ServiceWithKey, free_port, make_service, ready_user

STAGES = ["identity", "rules", "input_screening", "consent", "output_screening", "explicit_label", "record"]


@pytest.fixture
def consent_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"stages": STAGES})


@pytest.fixture
def cgateway(consent_settings: Settings, sms: CapturingSmsSender) -> Iterator[Gateway]:
    cache.clear()
    gw = Gateway(consent_settings, sms_sender=sms)
    yield gw
    gw.close()


@pytest.fixture
def notifier(cgateway: Gateway) -> CapturingNotifier:
    captured = CapturingNotifier()
    install(cgateway, captured)
    return captured


@pytest.fixture
def studio(cgateway: Gateway, sms: CapturingSmsSender) -> ServiceWithKey:
    svc = make_service(cgateway, "studio")
    ready_user(cgateway, sms, svc.service, "editor")
    return svc


@dataclass
class Granted:
    request_id: str
    consent_id: str
    token: str


def grant_directly(
    gateway: Gateway,
    sms: CapturingSmsSender,
    notifier: CapturingNotifier,
    service: ServiceWithKey,
    *,
    phone: str,
    operations: list[str],
    photo: bytes | None = None,
    voice: bytes | None = None,
    days: int = 30,
) -> Granted:
    """The subject's whole answer through the service functions the public page calls."""
    limits = MediaLimits.from_settings(gateway.settings)
    with gateway.db.session() as session:
        started = consent.start_request(
            session,
            gateway.keys,
            gateway.settings,
            notifier,
            service.service,
            requested_by="editor",
            contact=phone,
            operations=operations,
        )
        request_id = started.request.id
    token = notifier.last_link.rsplit("/", 1)[1]
    with gateway.db.session() as session:
        request = session.get(ConsentRequest, request_id)
        assert request is not None
        consent.send_code(session, gateway.keys, gateway.settings, sms, request)
    with gateway.db.session() as session:
        request = session.get(ConsentRequest, request_id)
        assert request is not None
        assert consent.confirm_code(session, gateway.keys, gateway.settings, request, sms.last_code()).ok
    enrolments = []
    if photo is not None:
        enrolments.append(consent.enrol_face(photo, limits))
    if voice is not None:
        enrolments.extend(consent.enrol_voice(voice, limits))
    with gateway.db.session() as session:
        request = session.get(ConsentRequest, request_id)
        assert request is not None
        record: Consent = consent.grant(
            session,
            gateway.keys,
            gateway.settings,
            request,
            operations=operations,
            until=dt.datetime.now(dt.UTC) + dt.timedelta(days=days),
            text_version="1",
            enrolments=enrolments,
        )
        consent_id = record.id
    return Granted(request_id, consent_id, token)


def item(data: bytes, role: str = "input") -> MediaItem:
    return MediaItem.from_bytes(data, role=role)


# --- a real server on loopback, in this process (so the test reads the captured link and SMS) ---


PHONE = "+8613700001111"


@dataclass
class Served:
    url: str
    gateway: Gateway
    notifier: CapturingNotifier
    sms: CapturingSmsSender
    studio: ServiceWithKey


@pytest.fixture
def served(consent_settings: Settings, sms: CapturingSmsSender) -> Iterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = consent_settings.model_copy(update={"base_url": url})
    cache.clear()
    gateway = Gateway(settings, sms_sender=sms)
    notifier = CapturingNotifier()
    install(gateway, notifier)
    studio = make_service(gateway, "studio")
    ready_user(gateway, sms, studio.service, "editor")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, gateway), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Served(url, gateway, notifier, sms, studio)
    server.should_exit = True
    thread.join(timeout=20)
