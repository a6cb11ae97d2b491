from __future__ import annotations

from fastapi.testclient import TestClient

from synthgate.labeling.implicit import AigcLabel, bind, write_label
from synthgate.web.app import create_app
from tests.labeling.implicit import media_factory as mf


def test_lm6_http_inspect_reports_tier_and_binding(client: TestClient, label: AigcLabel) -> None:
    png = mf.image("PNG")
    key = client.app.state.gateway.keys.labeling_signing_key  # type: ignore[attr-defined]
    labeled = write_label(png, bind(label, png, key))
    response = client.post("/v1/inspect", files={"file": ("upload.txt", labeled, "text/plain")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["container"] == "png" and body["tier"] == "generated"
    assert body["binding"] == {"scheme": "sg1", "status": "bound"}
    raw = client.post(
        "/v1/inspect?declared=true", content=png, headers={"content-type": "application/octet-stream"}
    )
    assert raw.json()["tier"] == "possibly"


def test_lm6_http_bad_input_gets_clear_4xx(client: TestClient) -> None:
    truncated = client.post("/v1/inspect", files={"file": ("a.png", mf.image("PNG")[:60], "image/png")})
    assert truncated.status_code == 422 and truncated.json()["error"]["code"] == "media.corrupt"
    unknown = client.post("/v1/inspect", content=b"\x00\x01\x02\x03" * 8)
    assert unknown.status_code == 415
    empty = client.post("/v1/inspect", content=b"")
    assert empty.status_code == 422


def test_lm6_http_inspect_is_rate_limited(settings: object, gateway: object) -> None:
    settings.inspect_rate_per_minute = 2  # type: ignore[attr-defined]
    with TestClient(create_app(settings, gateway)) as client:  # type: ignore[arg-type]
        codes = [client.post("/v1/inspect", content=mf.image("PNG")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert int(client.post("/v1/inspect", content=b"x").headers["Retry-After"]) > 0


def test_lm6_public_upload_page_shows_the_verdict(client: TestClient, label: AigcLabel) -> None:
    page = client.get("/inspect")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    result = client.post(
        "/inspect", files={"file": ("x.jpg", write_label(mf.image("JPEG"), label), "image/jpeg")}
    )
    assert result.status_code == 200
    assert "this content IS AI-generated" in result.text and "gen-0001" in result.text
    clean = client.post(
        "/inspect", files={"file": ("x.jpg", mf.image("JPEG"), "image/jpeg")}, data={"declared": "1"}
    )
    assert "MAY BE AI-generated" in clean.text
    bad = client.post("/inspect", files={"file": ("x.jpg", b"\xfe\x00\x01 not an image", "image/jpeg")})
    assert bad.status_code == 415 and "Cannot check this file" in bad.text
