"""Console pages for consents (DSP-14): who may see them, who may revoke, and that revoking is audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.consent.models import BiometricTemplate, Consent
from synthgate.consent.notifiers import CapturingNotifier
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from tests.conftest import make_service
from tests.consent import media
from tests.consent.conftest import grant_directly
from tests.web.conftest import csrf_token, make_operator, post_login


def _login(client: TestClient, gateway: Gateway, role: str) -> str:
    username = f"{role}-op"
    client.cookies.clear()
    assert post_login(client, username, make_operator(gateway, username, role)).status_code == 303
    return csrf_token(client)


def test_dsp14_console_lists_consents_and_compliance_revokes_with_audit(
    client: TestClient, gateway: Gateway, sms: CapturingSmsSender
) -> None:
    svc = make_service(gateway, "studio")
    granted = grant_directly(
        gateway,
        sms,
        CapturingNotifier(),
        svc,
        phone="+8613600002222",
        operations=["face.swap"],
        photo=media.astronaut_png(),
    )
    assert client.get("/console/consent", follow_redirects=False).status_code == 303  # login first

    csrf = _login(client, gateway, "reviewer")
    listing = client.get("/console/consent")
    assert listing.status_code == 200 and granted.consent_id[:12] in listing.text
    # Found by the subject's number (keyed hash), not by a stored clear number.
    assert granted.consent_id[:12] in client.get("/console/consent", params={"phone": "13600002222"}).text
    assert granted.consent_id[:12] not in client.get("/console/consent", params={"phone": "13600009999"}).text
    detail = client.get(f"/console/consent/{granted.consent_id}")
    assert detail.status_code == 200 and "valid" in detail.text and "+86136" not in detail.text
    denied = client.post(
        f"/console/consent/{granted.consent_id}/revoke", data={"csrf_token": csrf, "reason": "x"}
    )
    assert denied.status_code == 403

    csrf = _login(client, gateway, "compliance")
    no_csrf = client.post(f"/console/consent/{granted.consent_id}/revoke", data={"reason": "asked by phone"})
    assert no_csrf.status_code == 403
    done = client.post(
        f"/console/consent/{granted.consent_id}/revoke",
        data={"csrf_token": csrf, "reason": "the subject asked by phone"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with gateway.db.session() as session:
        record = session.get(Consent, granted.consent_id)
        assert record is not None and record.status == "revoked"
        assert session.scalars(select(BiometricTemplate)).all() == []
        event = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "consent.revoked")).one()
        assert (
            event.actor == "operator:compliance-op" and event.data["reason"] == "the subject asked by phone"
        )
    again = client.post(
        f"/console/consent/{granted.consent_id}/revoke", data={"csrf_token": csrf, "reason": "twice"}
    )
    assert again.status_code == 409
