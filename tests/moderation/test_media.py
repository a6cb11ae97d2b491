"""Media detectors on real files: nudenet's and rapidocr's packaged ONNX models, PDQ hash banks,
undecodable files, and detectors that time out or fail (fail-closed and fail-open).

NSFW positives: no explicit image ships with nudenet or any installed package, and nothing may be
downloaded, so the NSFW detector is tested on the negative side (real photographs from
scikit-image pass) and on the real model's output structure (its classes and boxes on a real
face), with the exposed-class mapping checked against nudenet's own label list.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from synthgate.gateway.sdk import Gateway
from synthgate.governance.models import Service
from synthgate.media import MediaItem
from synthgate.moderation import service as library
from synthgate.moderation.detectors_media import EXPOSED_CLASSES, NsfwDetector, OcrDetector, nsfw_findings
from synthgate.moderation.findings import Finding
from synthgate.moderation.hashbank import pdq_of_image
from synthgate.moderation.registry import DetectorConfig, Guarded, parse_config
from synthgate.moderation.screener import build_moderation
from tests.conftest import make_service
from tests.moderation.conftest import configure, publish_terms

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _jpeg(pixels: np.ndarray, quality: int = 85) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)


def _text_image(lines: list[str]) -> bytes:
    assert FONT.exists(), "the CJK font is missing: make system-deps"
    image = Image.new("RGB", (720, 90 * len(lines) + 40), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 44)
    for i, line in enumerate(lines):
        draw.text((24, 24 + 90 * i), line, font=font, fill=(20, 20, 20))
    return _png(np.asarray(image))


def test_nsfw_model_output_structure_on_a_real_photo() -> None:
    import nudenet.nudenet as nn

    labels = set(vars(nn)["__labels"])
    assert labels >= EXPOSED_CLASSES, "the exposed classes must be nudenet's own labels"
    photo = _astronaut()
    detections = NsfwDetector().detect(photo)
    # The real model finds the astronaut's face (a non-explicit class) with a box on the face.
    faces = [d for d in detections if d["class"] == "FACE_FEMALE"]
    assert faces and faces[0]["score"] > 0.5
    x, y, w, h = faces[0]["box"]
    assert 100 < x < 300 and 30 < y < 200 and w > 40 and h > 40
    assert nsfw_findings(detections) == []
    # The mapping from the model's structure: exposed classes only, best box per class.
    structured = [
        {"class": "FACE_FEMALE", "score": 0.9, "box": [1, 2, 3, 4]},
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.61, "box": [5, 6, 7, 8]},
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.83, "box": [9, 9, 9, 9]},
        {"class": "BELLY_COVERED", "score": 0.95, "box": [1, 1, 1, 1]},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.3, "box": [1, 1, 1, 1]},
    ]
    [finding] = nsfw_findings(structured, 2)
    assert (finding.category, finding.score, finding.rule) == ("A.1.6", 0.83, "nudenet.FEMALE_BREAST_EXPOSED")
    assert finding.evidence.startswith("frame 2:")


def test_dsp10_real_photos_pass_the_media_detectors(gateway: Gateway) -> None:
    from skimage import data

    chat = make_service(gateway)
    with gateway.db.session() as session:
        moderation = build_moderation(session, chat.service, [])
    items = [
        MediaItem.from_bytes(_png(_astronaut()), role="output"),
        MediaItem.from_bytes(_jpeg(np.asarray(data.chelsea(), dtype=np.uint8)), role="output"),
        MediaItem.from_bytes(_jpeg(np.asarray(data.coffee(), dtype=np.uint8)), role="output"),
    ]
    verdict = moderation.verdict_media(items, "output")
    assert verdict.action == "allow", verdict.as_dict()
    assert set(verdict.detectors) == {"nsfw", "ocr", "hash-bank"}
    assert verdict.detectors["nsfw"].startswith("nudenet-")
    assert verdict.notes == []


def test_dsp10_text_inside_an_image_is_read_and_screened(gateway: Gateway) -> None:
    publish_terms(gateway, ("term", "制造炸弹", "A.1.5"))
    chat = make_service(gateway)
    lines = ["教你如何制造炸弹", "Buy now at example shop"]
    assert OcrDetector().read(np.asarray(Image.open(io.BytesIO(_text_image(lines))).convert("RGB"))) == [
        "教你如何制造炸弹",
        "Buy now at example shop",
    ]
    with gateway.db.session() as session:
        moderation = build_moderation(session, chat.service, [])
    blocked = moderation.verdict_media([MediaItem.from_bytes(_text_image(lines), role="output")], "output")
    assert blocked.action == "block"
    finding = blocked.decisive
    assert finding is not None and finding.detector == "ocr" and finding.category == "A.1.5"
    assert "制造炸弹" in finding.evidence and finding.evidence.startswith("file 0 (output image/png)")
    clean = moderation.verdict_media(
        [MediaItem.from_bytes(_text_image(["今天天气很好", "Have a nice day"]))], "output"
    )
    assert clean.action == "allow", clean.as_dict()


def test_dsp10_banned_pdq_match_blocks_an_output_image_in_the_services_named_banks(gateway: Gateway) -> None:
    photo = _astronaut()
    banned, _ = pdq_of_image(photo)
    with gateway.db.session() as session:
        proposed = library.propose(
            session,
            [library.Proposal("pdq", banned, "A.1.6", reason="known image", rule="R-1", bank="partner-x")],
            actor="operator:alice",
        )
        library.decide(session, [e.id for e in proposed], approve=True, actor="operator:bob")
        library.publish(session, actor="operator:bob")
    plain = make_service(gateway, "plain")
    partner = make_service(gateway, "partner")
    configure(gateway, partner.service, hash_banks=["default", "partner-x"])
    # A re-encoded, slightly altered copy (JPEG 70 of a brightened photo) still matches by PDQ.
    altered = np.clip(photo.astype(int) + 12, 0, 255).astype(np.uint8)
    item = MediaItem.from_bytes(_jpeg(altered, 70), role="output")
    with gateway.db.session() as session:
        without = build_moderation(session, plain.service, []).verdict_media([item], "output")
        with_bank = build_moderation(session, session.get(Service, partner.service.id), []).verdict_media(
            [item], "output"
        )
    assert without.action == "allow", "the bank is not enabled for this service"
    assert with_bank.action == "block"
    decisive = with_bank.decisive
    assert decisive is not None and decisive.detector == "hash-bank" and decisive.variant == "pdq"
    assert "bank partner-x" in decisive.evidence and decisive.category == "A.1.6"


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, _jpeg(np.zeros((32, 32, 3), np.uint8))[:200]],
    ids=["png-header-only", "truncated-jpeg"],
)
def test_dsp10_undecodable_image_is_a_finding_the_policy_blocks(gateway: Gateway, data: bytes) -> None:
    chat = make_service(gateway)
    with gateway.db.session() as session:
        moderation = build_moderation(session, chat.service, [])
    item = MediaItem(data=data, container="png" if data.startswith(b"\x89PNG") else "jpeg", medium="image")
    verdict = moderation.verdict_media([item], "output")
    assert verdict.action == "block"
    [(finding, action)] = verdict.findings
    assert finding.category == "undecodable" and action == "block"


class _Slow:
    name = "slow"
    version = "1"
    media = frozenset({"image"})

    def scan_media(self, *args: Any) -> list[Finding]:
        time.sleep(2)
        return []


class _Broken:
    name = "broken"
    version = "1"
    media = frozenset({"image"})

    def scan_media(self, *args: Any) -> list[Finding]:
        raise RuntimeError("model file missing")


def test_dsp10_a_slow_or_failed_detector_is_never_a_silent_pass(gateway: Gateway) -> None:
    chat = make_service(gateway)
    item = MediaItem.from_bytes(_png(np.full((64, 64, 3), 200, np.uint8)))
    with gateway.db.session() as session:
        base = build_moderation(session, chat.service, [])
    for on_failure, action, category in (
        ("closed", "block", "detector-error"),
        ("open", "flag", "detector-skipped"),
    ):
        base.media_detectors = [
            Guarded(_Slow(), DetectorConfig("slow", 0.2, on_failure)),  # type: ignore[arg-type]
            Guarded(_Broken(), DetectorConfig("broken", 5, on_failure)),  # type: ignore[arg-type]
        ]
        started = time.perf_counter()
        verdict = base.verdict_media([item], "output")
        assert time.perf_counter() - started < 1.5, "the request waited for the slow detector"
        assert verdict.action == action
        assert sorted(f.category for f, _ in verdict.findings) == [category, category]
        assert any("slow timed out after 0.2 s" in n and f"fail-{on_failure}" in n for n in verdict.notes)
        assert any("broken failed: RuntimeError: model file missing" in n for n in verdict.notes)


def test_detector_settings_are_validated() -> None:
    from synthgate.errors import InvalidInput

    assert [c.name for c in parse_config(None)] == ["hash-bank", "nsfw", "ocr"]
    assert [c.name for c in parse_config({"nsfw": {"timeout": 3, "on_failure": "open"}, "ocr": False})] == [
        "nsfw"
    ]
    for bad in ({"no-such": {}}, {"nsfw": {"on_failure": "sometimes"}}, {"nsfw": {"timeout": "x"}}, []):
        with pytest.raises(InvalidInput):
            parse_config(bad)
