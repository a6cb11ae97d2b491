"""The governance gate in the pipeline: biometric model versions (DSP-15) and public-facing
functions (DSP-20) need a passed assessment; emergency suspensions reach every worker in seconds."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.config import Settings
from synthgate.db import utcnow
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.errors import Conflict, Refused
from synthgate.gateway.models import Refusal
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from tests.conftest import ServiceWithKey, make_service, ready_user, start_server, stop
from tests.governance.helpers import clear_for_biometric, filed_algorithm, passed_assessment

STAGES = [
    "identity",
    "rules",
    "governance_gate",
    "input_screening",
    "output_screening",
    "explicit_label",
    "record",
]


@pytest.fixture
def gated(settings: Settings, sms: CapturingSmsSender) -> Iterator[Gateway]:
    """A gateway whose pipeline includes the governance gate (registered by entry point)."""
    gw = Gateway(settings.model_copy(update={"stages": STAGES}), sms_sender=sms)
    yield gw
    gw.close()


@pytest.fixture
def face(gated: Gateway, sms: CapturingSmsSender) -> ServiceWithKey:
    svc = make_service(gated, "face")
    ready_user(gated, sms, svc.service)
    return svc


def _link(gateway: Gateway, svc: ServiceWithKey) -> str:
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings)
        service = session.get(Service, svc.service.id)
        assert service is not None
        governance.link_service(session, service, algorithm, actor="t")
        return algorithm.id


def _refused(gateway: Gateway, **kwargs: object) -> Refused:
    with pytest.raises(Refused) as caught:
        gateway.check("face", "u1", prompt="swap my face", **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_dsp15_biometric_edit_needs_a_passed_assessment_of_the_model_version(
    gated: Gateway, face: ServiceWithKey
) -> None:
    # Plain generation is not gated.
    assert gated.check("face", "u1", prompt="a poem").ticket_id
    # No algorithm linked: no filed version can cover a face swap.
    refusal = _refused(gated, operation="face.swap", model="swapper-1")
    assert (refusal.reason, refusal.clause) == ("governance.unassessed", "DSP-15")
    algorithm_id = _link(gated, face)
    with gated.db.session() as session:
        algorithm = governance.get_algorithm(session, algorithm_id)
        version = governance.add_version(
            session, algorithm, version="1.0", models=["swapper-1"], biometric=True, actor="t"
        )
        version_id = version.id
    refusal = _refused(gated, operation="face.swap", model="swapper-1")
    assert refusal.clause == "DSP-15" and "1.0" in refusal.message
    # An unknown model is not covered by the filed version.
    assert _refused(gated, operation="face.swap", model="other").clause == "DSP-15"
    # A failed assessment does not clear it.
    with gated.db.session() as session:
        failed = governance.create_assessment(
            session, kind="security", title="first try", actor="t", algorithm_version_id=version_id
        )
        governance.add_evidence(
            session,
            gated.settings,
            owner_type="assessment",
            owner_id=failed.id,
            filename="r.txt",
            data=b"findings: watermark missing",
            actor="t",
        )
        governance.sign_off(
            session,
            failed,
            result="failed",
            conclusion="fix labels",
            signed_on=dt.date(2026, 11, 1),
            actor="t",
        )
        with pytest.raises(Conflict):
            governance.sign_off(
                session,
                failed,
                result="passed",
                conclusion="again",
                signed_on=dt.date(2026, 11, 1),
                actor="t",
            )
    assert _refused(gated, operation="face.swap", model="swapper-1").clause == "DSP-15"
    # The same model also may not be used for a non-biometric operation: the version itself edits faces.
    assert _refused(gated, operation="generate", model="swapper-1").clause == "DSP-15"
    with gated.db.session() as session:
        version = session.get(type(version), version_id)
        assert version is not None
        assessment = passed_assessment(session, gated.settings, version=version)
        assessment_id = assessment.id
    checked = gated.check("face", "u1", prompt="swap", operation="face.swap", model="swapper-1")
    assert checked.ticket_id
    with gated.db.session() as session:
        note = session.scalar(
            select(AuditEvent).where(
                AuditEvent.event_type == "pipeline.governance_gate",
                AuditEvent.subject_id == checked.produce_id,
            )
        )
        assert note is not None and note.data["version_assessment"] == assessment_id
        reasons = [r.reason for r in session.scalars(select(Refusal))]
    assert reasons.count("governance.unassessed") == 5


def test_dsp15_expired_assessment_no_longer_clears_the_version(gated: Gateway, face: ServiceWithKey) -> None:
    algorithm_id = _link(gated, face)
    with gated.db.session() as session:
        algorithm = governance.get_algorithm(session, algorithm_id)
        version = governance.add_version(
            session, algorithm, version="1.0", models=["voice-1"], biometric=True, actor="t"
        )
        assessment = passed_assessment(
            session, gated.settings, version=version, valid_until=utcnow() + dt.timedelta(seconds=2)
        )
        assert assessment.result == "passed"
    assert gated.check("face", "u1", prompt="x", operation="voice.clone", model="voice-1").ticket_id
    time.sleep(2.1)
    assert _refused(gated, operation="voice.clone", model="voice-1").clause == "DSP-15"


def test_dsp20_public_facing_function_needs_an_assessment_before_it_goes_live(
    gated: Gateway, face: ServiceWithKey
) -> None:
    with gated.db.session() as session:
        service = session.get(Service, face.service.id)
        assert service is not None
        function = governance.declare_function(
            session, service, operation="news.rewrite", title="News rewriting", public_facing=True, actor="t"
        )
        governance.declare_function(
            session, service, operation="poem.write", title="Poems", public_facing=False, actor="t"
        )
        function_id = function.id
    refusal = _refused(gated, operation="news.rewrite")
    assert (refusal.reason, refusal.clause) == ("governance.unassessed", "DSP-20")
    assert gated.check("face", "u1", prompt="a poem", operation="poem.write").ticket_id
    with gated.db.session() as session:
        passed_assessment(session, gated.settings, function_id=function_id)
    assert gated.check("face", "u1", prompt="rewrite", operation="news.rewrite").ticket_id


def test_gai14_suspension_of_a_feature_and_of_a_service(gated: Gateway, face: ServiceWithKey) -> None:
    with gated.db.session() as session:
        service = session.get(Service, face.service.id)
        assert service is not None
        feature = governance.suspend(
            session, service, reason="deepfake wave", feature="medium:image", actor="t"
        )
        feature_id = feature.id
    refusal = _refused(gated, medium="image")
    assert refusal.reason == "governance.suspended" and "deepfake wave" in refusal.message
    assert gated.check("face", "u1", prompt="text is fine").ticket_id
    with gated.db.session() as session:
        whole = governance.suspend(
            session, governance.get_service(session, "face"), reason="incident", actor="t", case_ref="CASE-1"
        )
        whole_id = whole.id
    assert _refused(gated).reason == "governance.suspended"
    with gated.db.session() as session:
        governance.lift_suspension(session, whole_id, actor="t")
        governance.lift_suspension(session, feature_id, actor="t")
        with pytest.raises(Conflict):
            governance.lift_suspension(session, feature_id, actor="t")
    assert gated.check("face", "u1", prompt="x", medium="image").ticket_id
    with gated.db.session() as session:
        types = [
            e.event_type
            for e in session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("service.susp%")))
        ]
    assert types.count("service.suspended") == 2 and types.count("service.suspension_lifted") == 2


def test_gai14_suspension_reaches_another_worker_process_within_seconds(
    settings: Settings, sms: CapturingSmsSender
) -> None:
    gw = Gateway(settings, sms_sender=sms)
    try:
        svc = make_service(gw, "live")
        ready_user(gw, sms, svc.service)
        import json

        server = start_server(settings, SYNTHGATE_STAGES=json.dumps(STAGES))
        try:
            url = server.url + "/v1/generations"
            body = {"user": "u1", "input": "hello"}
            assert httpx.post(url, json=body, headers=svc.headers).status_code == 201
            with gw.db.session() as session:
                suspension = governance.suspend(
                    session, governance.get_service(session, "live"), reason="emergency", actor="t"
                )
                suspension_id = suspension.id
            started = time.monotonic()
            while True:
                answer = httpx.post(url, json=body, headers=svc.headers)
                if answer.status_code == 403:
                    break
                assert time.monotonic() - started < 5, "the suspension did not reach the other process"
                time.sleep(0.05)
            took = time.monotonic() - started
            assert answer.json()["error"]["reason"] == "governance.suspended"
            assert took < 2.0, took
            with gw.db.session() as session:
                governance.lift_suspension(session, suspension_id, actor="t")
            started = time.monotonic()
            while httpx.post(url, json=body, headers=svc.headers).status_code != 201:
                assert time.monotonic() - started < 5, "lifting did not reach the other process"
                time.sleep(0.05)
        finally:
            stop(server.process)
    finally:
        gw.close()


def test_dsp15_helper_clears_a_service_for_biometric_edits(gated: Gateway, face: ServiceWithKey) -> None:
    assert _refused(gated, operation="face.swap").clause == "DSP-15"
    clear_for_biometric(gated, "face")
    assert gated.check("face", "u1", prompt="swap", operation="face.swap").ticket_id
