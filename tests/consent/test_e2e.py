"""Done-when for DSP-14, over real HTTP on loopback: refused, consented on the public page, passes,
revoked, refused again — every step in the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import re

import httpx
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from tests.consent import media
from tests.consent.conftest import PHONE, Served


def face_swap(client: httpx.Client, served: Served) -> httpx.Response:
    return client.post(
        "/v1/generations",
        headers=served.studio.headers,
        json={
            "user": "editor",
            "input": "put the source face on the target picture",
            "medium": "image",
            "operation": "face.swap",
            "media": [{"data": base64.b64encode(media.astronaut_png()).decode(), "role": "target"}],
        },
    )


def test_dsp14_end_to_end_refused_consented_passes_revoked_refused(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=120, follow_redirects=True) as client:
        # 1. An unconsented face: refused, and the user is told how to obtain consent.
        first = face_swap(client, served)
        assert first.status_code == 403, first.text
        error = first.json()["error"]
        assert error["reason"] == "consent.missing" and error["clause"] == "DSP-14"
        assert "separate consent" in error["message"]

        # 2. The user asks the person; the link goes to the person only.
        asked = client.post(
            "/v1/consents/requests",
            headers=served.studio.headers,
            json={
                "user": "editor",
                "contact": PHONE,
                "operations": ["face.swap"],
                "purpose": "birthday video",
            },
        )
        assert asked.status_code == 201, asked.text
        assert "consent/" not in asked.text  # never the link
        request_id = asked.json()["id"]
        link = served.notifier.last_link
        assert served.notifier.sent[-1].contact == PHONE
        assert link.startswith(served.url + "/consent/")
        path = link[len(served.url) :]

    # 3. The person, in their own browser session, opens the link and proves it is them.
    with httpx.Client(base_url=served.url, timeout=120, follow_redirects=True) as person:
        page = person.get(path)
        assert page.status_code == 200 and "Send me a code" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        # Answering before verifying is refused.
        early = person.post(
            path + "/grant", data={"operations": "face.swap", "until": "2099-01-01", "agree": "yes"}
        )
        assert early.status_code == 403
        sent = person.post(path + "/code")
        assert sent.status_code == 200 and "A code was sent" in sent.text
        assert served.sms.sent[-1][0] == PHONE
        wrong = person.post(
            path + "/verify", data={"code": "000000" if served.sms.last_code() != "000000" else "111111"}
        )
        assert wrong.status_code == 422
        verified = person.post(path + "/verify", data={"code": served.sms.last_code()})
        assert verified.status_code == 200 and "I consent" in verified.text
        version = re.search(r'name="text_version" value="([^"]+)"', verified.text)
        assert version is not None
        # Bad input: a photo without a face keeps the request open and explains why.
        from skimage import data

        no_face = person.post(
            path + "/grant",
            data={
                "operations": "face.swap",
                "until": _in_days(30),
                "text_version": version.group(1),
                "agree": "yes",
            },
            files={"photo": ("coffee.png", media.encode(data.coffee()), "image/png")},
        )
        assert no_face.status_code == 422 and "no face found" in no_face.text
        granted = person.post(
            path + "/grant",
            data={
                "operations": "face.swap",
                "until": _in_days(30),
                "text_version": version.group(1),
                "agree": "yes",
            },
            files={"photo": ("me.png", media.astronaut_png(), "image/png")},
        )
        assert granted.status_code == 200, granted.text
        assert "Your consent is recorded" in granted.text and 'id="revoke"' in granted.text

    with httpx.Client(base_url=served.url, timeout=120, follow_redirects=True) as client:
        status = client.get(f"/v1/consents/requests/{request_id}", headers=served.studio.headers)
        assert status.json()["status"] == "consented"
        # 4. The same request now passes.
        second = face_swap(client, served)
        assert second.status_code == 201, second.text

    # 5. The person withdraws through the same link (a fresh browser: the link is enough).
    with httpx.Client(base_url=served.url, timeout=120, follow_redirects=True) as person:
        revoked = person.post(path + "/revoke")
        assert revoked.status_code == 200 and "withdrawn" in revoked.text

    with httpx.Client(base_url=served.url, timeout=120, follow_redirects=True) as client:
        third = face_swap(client, served)
        assert third.status_code == 403 and third.json()["error"]["reason"] == "consent.missing"

    # 6. All of it in the audit log, in order.
    with served.gateway.db.session() as session:
        events = [(e.event_type, e.data) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    kinds = [kind for kind, _ in events]
    refusals = [
        i
        for i, (kind, data) in enumerate(events)
        if kind == "pipeline.refused" and data["reason"] == "consent.missing"
    ]
    assert len(refusals) == 2
    order = [
        refusals[0],
        kinds.index("consent.requested"),
        kinds.index("identity.otp_sent", refusals[0]),
        kinds.index("identity.otp_failed"),
        kinds.index("consent.subject_verified"),
        kinds.index("consent.granted"),
        kinds.index("pipeline.ticket", kinds.index("consent.granted")),
        kinds.index("consent.revoked"),
        refusals[1],
    ]
    assert order == sorted(order), list(zip(order, [kinds[i] for i in order], strict=True))
    passed = [data for kind, data in events if kind == "pipeline.consent" and data.get("consents")]
    assert passed and passed[0]["faces"] == 1


def _in_days(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()
