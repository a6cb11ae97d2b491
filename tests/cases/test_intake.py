"""Public complaint intake (DSP-12, GAI-15): no login, a tracking number, the published process and
a deadline in working days; floods, forged or reused forms and files that lie about their type are
refused with clear errors and nothing stored; the status page tells nobody anything about others."""

from __future__ import annotations

import base64
import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synthgate.cases import process
from synthgate.cases import service as cases
from synthgate.cases.models import Case, Complaint
from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from tests.cases.conftest import complain_api, generate_image, picture
from tests.conftest import ServiceWithKey

BEIJING = dt.timezone(dt.timedelta(hours=8))


def _count(gateway: Gateway, model: object) -> int:
    with gateway.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def test_dsp12_gai15_api_complaint_is_acknowledged_with_tracking_number_process_and_deadline(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    published = client.get("/v1/complaints/process").json()
    assert published["deadline_workdays"] == gateway.settings.complaint_deadline_workdays
    assert "rumour" in published["categories"] and published["steps"]

    produce_id, _ = generate_image(gateway, "alice", picture(3))
    response = complain_api(client, gateway, produce_id=produce_id)
    assert response.status_code == 201, response.text
    receipt = response.json()
    number = receipt["tracking_number"]
    assert number.startswith("SG-") and len(number.replace("-", "")) == 22
    assert receipt["process"] == published
    received = dt.datetime.fromisoformat(receipt["received_at"])
    due = dt.datetime.fromisoformat(receipt["deadline"])
    expected = process.calendar(gateway.settings).due_after(
        received, gateway.settings.complaint_deadline_workdays
    )
    assert due == expected and due - received >= dt.timedelta(
        days=gateway.settings.complaint_deadline_workdays
    )

    status = client.get(f"/v1/complaints/{number}").json()
    assert status["status"] == "open" and status["deadline"] == receipt["deadline"]
    # Nothing about the account, the generation or other complainants on the public status.
    assert set(status) == {
        "received_at",
        "category",
        "category_label",
        "status",
        "deadline",
        "deadline_provisional",
        "decided_within_deadline",
        "outcome",
        "refutation",
    }
    page = client.get(receipt["status_url"])
    assert page.status_code == 200 and "open" in page.text and page.headers["cache-control"] == "no-store"
    # Tracking numbers are not guessable and unknown ones (even well-formed) are simply unknown.
    assert client.get(f"/v1/complaints/{cases.new_tracking_number()}").status_code == 404
    assert client.get("/complaints/status/SG-00000-00000-00000-00000").status_code == 404
    with gateway.db.session() as session:
        complaint = session.scalars(select(Complaint)).one()
        assert number not in complaint.tracking_lookup and "false story" not in complaint.description_enc


def test_gai15_web_form_upload_is_traced_to_its_generation(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    produce_id, delivered = generate_image(gateway, "alice", picture(4))
    form = client.get("/complaints")
    assert form.status_code == 200 and 'name="website"' in form.text
    token = form.text.split('name="challenge" value="')[1].split('"')[0]
    sent = client.post(
        "/complaints",
        data={
            "challenge": token,
            "category": "deepfake",
            "description": "This is my face, I never agreed.",
            "website": "",
        },
        files={"file": ("found.png", delivered, "image/png")},
    )
    assert sent.status_code == 200, sent.text
    assert "tracking-number" in sent.text and "working days" in sent.text
    with gateway.db.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.produce_id == produce_id and case.content_kind == "upload"
        complaint = session.scalars(select(Complaint)).one()
        # The uploaded file is kept encrypted; the reviewer reads it back.
        stored = (gateway.settings.blob_dir / str(complaint.evidence_path)).read_bytes()
        assert delivered not in stored
        assert cases.load_evidence(gateway.keys, gateway.settings, complaint) == delivered


def test_dsp12_uploads_that_are_not_what_they_claim_are_refused_and_nothing_is_stored(
    client: TestClient, gateway: Gateway
) -> None:
    png = picture(5)
    cases_ = [
        {"data": base64.b64encode(png).decode(), "media_type": "image/jpeg"},  # a PNG claiming JPEG
        {"data": base64.b64encode(b"MZ\x90\x00 not a picture at all").decode(), "media_type": "image/png"},
        {"data": base64.b64encode(png[:60]).decode(), "media_type": "image/png"},  # truncated
        {"data": "***not base64***"},
    ]
    for content in cases_:
        response = complain_api(client, gateway, **content)
        assert response.status_code in (415, 422), response.text
        assert response.json()["error"]["message"]
    mismatch = complain_api(client, gateway, **cases_[0]).json()["error"]
    assert mismatch["code"] == "media.mismatch" and "png" in mismatch["message"]
    assert _count(gateway, Complaint) == 0 and _count(gateway, Case) == 0
    assert not (gateway.settings.blob_dir / "complaints").exists()


def test_dsp12_spam_defences_honeypot_forged_reused_fast_and_no_proof_of_work(
    client: TestClient, gateway: Gateway, settings: Settings
) -> None:
    fields = {
        "category": "illegal",
        "description": "Illegal content at this address.",
        "content_url": "https://example.org/post/1",
    }

    def web(token: str, **extra: str) -> int:
        return client.post("/complaints", data={"challenge": token, **fields, **extra}).status_code

    token = cases.issue_challenge(gateway.keys)
    assert web(token, website="http://spam.example") == 422  # the honeypot
    assert web(token[:-4] + "0000") == 422  # forged signature
    old = cases.issue_challenge(gateway.keys, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    assert web(old) == 422  # expired
    assert web(token) == 200
    assert web(token) == 409  # each form files one complaint
    # The API pays with a proof of work instead of a waiting time.
    challenge = client.get("/v1/complaints/challenge").json()
    body = {
        **{k: v for k, v in fields.items() if k != "content_url"},
        "content": {"url": fields["content_url"]},
        "challenge": challenge["token"],
        "nonce": "0",
    }
    bad = client.post("/v1/complaints", json=body)
    if cases.leading_zero_bits(__import__("hashlib").sha256(f"{challenge['token']}:0".encode()).digest()) < 8:
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "complaint.pow"
    # A person needs a few seconds for the form: a program that posts at once is refused.
    slow = settings.model_copy(update={"complaint_form_min_seconds": 30.0})
    fresh = cases.issue_challenge(gateway.keys)
    try:
        cases.check_challenge(gateway.keys, slow, fresh, channel="web")
        raise AssertionError("a form sent back at once must be refused")
    except cases.InvalidInput as exc:
        assert exc.code == "complaint.spam"
    assert _count(gateway, Complaint) == 1


def test_dsp12_flood_from_one_address_is_rate_limited_and_duplicates_merge_into_one_case(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    produce_id, _ = generate_image(gateway, "alice", picture(6))
    limit = gateway.settings.complaint_rate_per_hour
    numbers = []
    for _ in range(limit):
        response = complain_api(client, gateway, produce_id=produce_id)
        assert response.status_code == 201, response.text
        numbers.append(response.json()["tracking_number"])
    flooded = complain_api(client, gateway, produce_id=produce_id)
    assert flooded.status_code == 429 and int(flooded.headers["retry-after"]) > 0
    assert _count(gateway, Complaint) == limit
    # Same content, same category: one case; every complainant still has their own number.
    assert _count(gateway, Case) == 1 and len(set(numbers)) == limit
    with gateway.db.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.complaints == limit
        assert sum(1 for c in session.scalars(select(Complaint)) if c.merged) == limit - 1
    for number in numbers[:2]:
        assert client.get(f"/v1/complaints/{number}").status_code == 200


def test_dsp12_deadline_counts_chinese_working_days_and_falls_back_for_unknown_years(
    settings: Settings,
) -> None:
    # Received Tuesday 30 September 2025 (Beijing): National Day and Mid-Autumn run 1-8 October,
    # Saturday 11 October is worked in lieu. 7 working days: 9, 10, 11, 13, 14, 15, 16 October.
    received = dt.datetime(2025, 9, 30, 2, 0, tzinfo=dt.UTC)
    due = process.deadline(settings, received, 7)
    assert due.due_at == dt.datetime(2025, 10, 17, tzinfo=BEIJING).astimezone(dt.UTC)
    assert not due.provisional
    # A year the holiday package does not know yet: weekends and fixed statutory days, and it says so.
    later = process.deadline(settings, dt.datetime(2040, 3, 5, 2, 0, tzinfo=dt.UTC), 5)  # a Monday
    assert later.provisional
    assert later.due_at == dt.datetime(2040, 3, 13, tzinfo=BEIJING).astimezone(dt.UTC)
    # The configured extra holidays count too.
    extra = settings.model_copy(update={"workday_extra_holidays": [dt.date(2040, 3, 6)]})
    assert process.deadline(extra, dt.datetime(2040, 3, 5, 2, 0, tzinfo=dt.UTC), 5).due_at == dt.datetime(
        2040, 3, 14, tzinfo=BEIJING
    ).astimezone(dt.UTC)


def test_gai15_a_recompressed_copy_is_traced_by_its_perceptual_hash(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    import io

    from PIL import Image

    produce_id, delivered = generate_image(gateway, "alice", picture(8, (320, 240)))
    copy = io.BytesIO()
    # What a file looks like after a social network: metadata gone, smaller, JPEG.
    Image.open(io.BytesIO(delivered)).convert("RGB").resize((240, 180)).save(copy, "JPEG", quality=70)
    response = complain_api(
        client, gateway, data=base64.b64encode(copy.getvalue()).decode(), media_type="image/jpeg"
    )
    assert response.status_code == 201, response.text
    with gateway.db.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.produce_id == produce_id
        assert "pdq" in case.links[0]["matchers"] and "sha256" not in case.links[0]["matchers"]


def test_gai15_a_file_is_linked_by_the_produce_id_in_its_metadata_label(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    from synthgate.devtools.demo import DEMO_PROVIDER_CODE
    from synthgate.labeling.implicit import AigcLabel, write_label

    produce_id, _ = generate_image(gateway, "alice", picture(15))
    # A different picture carrying that generation's GB 45438 label (e.g. an edit of it): no hash
    # matches, the label names the generation.
    labeled = write_label(picture(16), AigcLabel(ContentProducer=DEMO_PROVIDER_CODE, ProduceID=produce_id))
    response = complain_api(client, gateway, data=base64.b64encode(labeled).decode(), media_type="image/png")
    assert response.status_code == 201, response.text
    with gateway.db.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.produce_id == produce_id
        assert case.links[0]["matchers"] == ["metadata_label"]
