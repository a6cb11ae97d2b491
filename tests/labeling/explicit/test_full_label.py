"""Full labeling of one file (LM-4, DSP-16, DSP-17, GB-E): explicit + metadata + binding + C2PA.

Read back by synthgate's own readers and by ExifTool / c2pa-python, through the service, the
``synthgate label`` CLI and ``POST /v1/labels``.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from synthgate.config import Settings
from synthgate.devtools.demo import DEMO_PROVIDER_CODE
from synthgate.labeling import c2pa
from synthgate.labeling.implicit import check_binding, read_labels
from synthgate.labeling.service import LabelRequest, LabelService
from synthgate.media import CorruptMedia, MediaError
from tests.conftest import make_service
from tests.labeling.explicit.helpers import encode, grey, ink_box, lightness
from tests.labeling.explicit.test_video import make_video


@pytest.fixture
def labeler(tmp_path: Path) -> LabelService:
    c2pa.make_dev_chain(tmp_path / "c2pa")
    return LabelService(Settings(data_dir=tmp_path, scheduler=False))


def _wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, 0.05 * np.ones((8000, 2)), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _mp3() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((8000, 1)), 16000, format="MP3")
    return buf.getvalue()


def _check_all_labels(labeler: LabelService, data: bytes, kind: str, produce_id: str | None = None) -> None:
    found = read_labels(data)
    assert len(found) == 1 and found[0].label is not None, "exactly one metadata label (GB-6.1)"
    label = found[0].label
    assert label.ContentProducer == DEMO_PROVIDER_CODE and label.Label == "1"
    if produce_id:
        assert label.ProduceID == produce_id
    assert check_binding(label, data, labeler.binding_verifier) == "bound"
    report = c2pa.read(data, kind, labeler.trust_anchors)
    assert report.state == "Trusted", report.failures
    assert report.aigc == label.to_dict()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_lm4_dsp17_full_label_image(labeler: LabelService, fmt: str) -> None:
    data = encode(grey("RGB", (400, 300)), fmt)
    result = labeler.label(data, LabelRequest(producer=DEMO_PROVIDER_CODE, produce_id="img-001"))
    assert (result.explicit, result.c2pa) == ("applied", "signed")
    _check_all_labels(labeler, result.data, result.kind, "img-001")
    box = ink_box(lightness(Image.open(io.BytesIO(result.data))))
    assert box is not None and box[3] - box[1] + 1 >= 0.05 * 300, "explicit label in the exported file (LM-4)"


@pytest.mark.usefixtures("exiftool")
def test_gbe_exiftool_reads_the_label_after_c2pa(labeler: LabelService, tmp_path: Path) -> None:
    result = labeler.label(encode(grey("RGB", (200, 150)), "JPEG"), LabelRequest(producer=DEMO_PROVIDER_CODE))
    path = tmp_path / "out.jpg"
    path.write_bytes(result.data)
    out = subprocess.run(
        ["exiftool", "-j", "-XMP-TC260:all", str(path)], capture_output=True, text=True, check=True
    )
    value = json.loads(out.stdout)[0]["Aigc"]
    assert json.loads(value) == result.label.to_dict()


@pytest.mark.parametrize(("make", "kind"), [(_wav, "wav"), (_mp3, "mp3")])
def test_lm4_dsp17_full_label_audio(labeler: LabelService, make: object, kind: str) -> None:
    data = make()  # type: ignore[operator]
    result = labeler.label(data, LabelRequest(producer=DEMO_PROVIDER_CODE))
    assert result.kind == kind and result.explicit == "applied"
    _check_all_labels(labeler, result.data, kind)
    assert sf.info(io.BytesIO(result.data)).duration > sf.info(io.BytesIO(data)).duration


def test_lm4_dsp17_full_label_video(labeler: LabelService) -> None:
    result = labeler.label(make_video(seconds=2.5), LabelRequest(producer=DEMO_PROVIDER_CODE))
    assert result.kind == "mp4" and result.explicit == "applied"
    _check_all_labels(labeler, result.data, "mp4")


def test_dsp16_no_explicit_keeps_pixels_and_still_labels_metadata(labeler: LabelService) -> None:
    rng = np.random.default_rng(5)
    base = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    data = encode(base, "PNG")
    result = labeler.label(data, LabelRequest(producer=DEMO_PROVIDER_CODE, explicit=False))
    assert result.explicit == "skipped"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(result.data))), np.asarray(base))
    _check_all_labels(labeler, result.data, "png")


def test_dsp16_relabeling_keeps_exactly_one_metadata_label(labeler: LabelService) -> None:
    once = labeler.label(encode(grey("RGB", (200, 150)), "PNG"), LabelRequest(producer=DEMO_PROVIDER_CODE))
    twice = labeler.label(once.data, LabelRequest(producer=DEMO_PROVIDER_CODE, explicit=False))
    assert len(read_labels(twice.data)) == 1


def test_dsp16_without_certificate_c2pa_is_skipped_with_a_note(tmp_path: Path) -> None:
    labeler = LabelService(Settings(data_dir=tmp_path, scheduler=False))
    result = labeler.label(encode(grey("RGB", (100, 80)), "PNG"), LabelRequest(producer=DEMO_PROVIDER_CODE))
    assert result.c2pa == "skipped" and any("certs dev" in n for n in result.notes)
    assert len(read_labels(result.data)) == 1


def test_gbe_bad_producer_code_refused_before_any_work(labeler: LabelService) -> None:
    from synthgate.errors import InvalidInput

    with pytest.raises(InvalidInput):
        labeler.label(encode(grey("RGB", (100, 80)), "PNG"), LabelRequest(producer="not-a-provider-code"))


@pytest.mark.parametrize(
    "data",
    [encode(grey("RGB", (300, 200)), "PNG")[:300], b"\x00\x01\x02\x03 random bytes", b""],
    ids=["truncated", "unknown", "empty"],
)
def test_dsp16_bad_input_is_a_clear_error_never_unlabeled_output(labeler: LabelService, data: bytes) -> None:
    with pytest.raises(MediaError):
        labeler.label(data, LabelRequest(producer=DEMO_PROVIDER_CODE))


# --- CLI -------------------------------------------------------------------------------------------


def test_dsp16_cli_labels_a_folder_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthgate.cli import app
    from synthgate.config import get_settings

    monkeypatch.setenv("SYNTHGATE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(encode(grey("RGB", (200, 150)), "PNG"))
    (src / "sub" / "b.jpg").write_bytes(encode(grey("RGB", (200, 150)), "JPEG"))
    (src / "c.wav").write_bytes(_wav())
    (src / "broken.png").write_bytes(encode(grey("RGB", (200, 150)), "PNG")[:100])
    runner = CliRunner()
    assert runner.invoke(app, ["certs", "dev"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "label",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--producer",
            DEMO_PROVIDER_CODE,
            "--workers",
            "2",
            "--json",
        ],
    )
    get_settings.cache_clear()
    assert result.exit_code == 1, result.output  # one file failed
    assert result.stdout.lstrip().startswith("["), (result.stdout[:2000], result.stderr[:2000])
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert all(rows[n]["ok"] for n in ("a.png", "b.jpg", "c.wav")), rows
    assert not rows["broken.png"]["ok"] and not (tmp_path / "out" / "broken.png").exists()
    for name in ("a.png", "sub/b.jpg", "c.wav"):
        out = (tmp_path / "out" / name).read_bytes()
        assert len(read_labels(out)) == 1
        assert rows[Path(name).name]["c2pa"] == "signed"


def test_dsp16_cli_single_file_with_produce_id(tmp_path: Path) -> None:
    from synthgate.cli import app

    src = tmp_path / "x.png"
    src.write_bytes(encode(grey("RGB", (120, 90)), "PNG"))
    result = CliRunner().invoke(
        app,
        [
            "label",
            str(src),
            "-o",
            str(tmp_path / "y.png"),
            "--producer",
            DEMO_PROVIDER_CODE,
            "--produce-id",
            "cli-42",
            "--no-explicit",
            "--no-c2pa",
        ],
    )
    assert result.exit_code == 0, result.output
    found = read_labels((tmp_path / "y.png").read_bytes())
    assert found[0].label is not None and found[0].label.ProduceID == "cli-42"


# --- HTTP ------------------------------------------------------------------------------------------


def test_dsp16_http_label_with_generate_scope(client, gateway) -> None:  # type: ignore[no-untyped-def]
    from synthgate.audit.models import AuditEvent

    svc = make_service(gateway)
    png = encode(grey("RGB", (320, 240)), "PNG")
    response = client.post(
        "/v1/labels",
        headers=svc.headers,
        files={"file": ("gen.png", png, "image/png")},
        data={"produce_id": "http-1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    header = json.loads(response.headers["X-AIGC-Label"])
    assert header["ProduceID"] == "http-1" and header["ContentProducer"] == DEMO_PROVIDER_CODE
    found = read_labels(response.content)
    assert len(found) == 1 and found[0].label is not None and found[0].label.to_dict() == header
    assert ink_box(lightness(Image.open(io.BytesIO(response.content)))) is not None
    with gateway.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.event_type == "label.applied")).one()
        assert event.subject_id == "http-1" and event.data["container"] == "png"


def test_dsp16_http_label_needs_a_key_with_scope(client, gateway) -> None:  # type: ignore[no-untyped-def]
    png = encode(grey("RGB", (64, 64)), "PNG")
    assert client.post("/v1/labels", files={"file": ("a.png", png)}).status_code == 401
    reader = make_service(gateway, "reader", scopes=["accounts"])
    assert (
        client.post("/v1/labels", headers=reader.headers, files={"file": ("a.png", png)}).status_code == 403
    )


def test_dsp16_http_corrupt_upload_is_a_clear_4xx(client, gateway) -> None:  # type: ignore[no-untyped-def]
    svc = make_service(gateway)
    bad = encode(grey("RGB", (300, 200)), "PNG")[:200]
    response = client.post("/v1/labels", headers=svc.headers, files={"file": ("a.png", bad)})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"].startswith("media.")
    assert CorruptMedia.code.startswith("media.")


def test_lm6_inspect_reads_our_full_label_as_generated_and_bound(labeler: LabelService) -> None:
    from synthgate.labeling.inspect import inspect

    result = labeler.label(encode(grey("RGB", (300, 200)), "JPEG"), LabelRequest(producer=DEMO_PROVIDER_CODE))
    report = inspect(result.data, verifier=labeler.binding_verifier)
    assert report.tier == "generated"
    assert report.binding["status"] == "bound"
    assert not report.multiple_labels


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_gbe_png_labeled_in_one_decode_digests_exactly_what_a_reader_decodes(mode: str) -> None:
    """The full label decodes a PNG once: the binding digests the frame just drawn on, which must
    equal what any reader decodes from the written file, or every binding would read as changed."""
    from synthgate.labeling.explicit import ExplicitOptions
    from synthgate.labeling.explicit.image import ImageLabeler
    from synthgate.labeling.implicit.binding import content_digest, image_digest

    rng = np.random.default_rng(4)
    channels = len(mode)
    pixels = rng.integers(0, 256, (150, 200, channels) if channels > 1 else (150, 200), dtype=np.uint8)
    source = encode(Image.fromarray(pixels, mode), "PNG")
    out, frames = ImageLabeler().apply_with_frames(source, "png", ExplicitOptions())
    assert frames is not None, "8-bit PNG takes the one-decode path"
    assert image_digest("png", frames) == content_digest(out)
    assert image_digest("png", frames, "sm3") == content_digest(out, algorithm="sm3")
    # Palette, 16-bit and other formats are re-encoded by Pillow: no shortcut is claimed.
    _, none = ImageLabeler().apply_with_frames(
        encode(grey("I;16", (200, 150)), "PNG"), "png", ExplicitOptions()
    )
    assert none is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_gbe_watermarked_output_keeps_icc_exif_and_text(tmp_path: Path, fmt: str) -> None:
    """The watermark re-encodes the picture into a fresh file; the ICC profile, EXIF and (PNG)
    text of the model's output are carried back at the container level, not lost."""
    from PIL import ImageCms, PngImagePlugin

    from synthgate.labeling.watermark import detect_image_bytes

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "synthgate-camera"  # Make
    rng = np.random.default_rng(2)
    base = np.clip(rng.normal(128, 10, (240, 320, 3)), 0, 255).astype(np.uint8)
    params: dict[str, object] = {"icc_profile": icc, "exif": exif.tobytes()}
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Description", "harbour")
        params["pnginfo"] = text
    else:
        params["quality"] = 92
    source = encode(Image.fromarray(base, "RGB"), fmt, **params)
    key = b"k" * 32
    labeler = LabelService(Settings(data_dir=tmp_path, scheduler=False, c2pa_enabled=False))
    result = labeler.label(source, LabelRequest(producer=DEMO_PROVIDER_CODE, watermark=(key, b"\x01" * 8)))
    assert result.watermark is not None and result.watermark["embedded"], result.watermark
    out = Image.open(io.BytesIO(result.data))
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x010F) == "synthgate-camera"
    if fmt == "PNG":
        assert out.info.get("Description") == "harbour"
    assert detect_image_bytes(result.data, key).payload == (b"\x01" * 8).hex()
    assert check_binding(result.label, result.data, labeler.binding_verifier) == "bound"
