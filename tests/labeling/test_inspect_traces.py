"""LM-6 traces without a metadata label: a visible label read by OCR, a C2PA manifest, validated."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from synthgate.labeling import c2pa
from synthgate.labeling.explicit import ExplicitOptions, labeler_for
from synthgate.labeling.inspect import inspect
from tests.labeling.explicit.test_video import make_video


def _photo(size: tuple[int, int] = (480, 360)) -> bytes:
    rng = np.random.default_rng(9)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 255 // size[0], y * 255 // size[1], np.full_like(x, 90)], axis=-1)
    rgb = rgb + rng.normal(0, 4, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_lm6_ocr_reads_a_visible_label_as_a_suspected_trace() -> None:
    labeled = labeler_for("image").apply(_photo(), "jpeg", ExplicitOptions())
    report = inspect(labeled, thorough=True)
    assert report.labels == [] and report.tier == "suspected"
    [trace] = [t for t in report.traces if t.detector == "ocr_explicit_label"]
    assert trace.kind == "explicit_label" and "人工智能" in trace.detail
    # The clean picture has no such trace, and a quick (not thorough) look runs no OCR.
    assert inspect(_photo(), thorough=True).tier == "none"
    assert not any(t.detector == "ocr_explicit_label" for t in inspect(labeled).traces)


def test_lm6_ocr_reads_the_label_on_the_first_video_frame() -> None:
    video = labeler_for("video").apply(make_video(seconds=2.5), "mp4", ExplicitOptions())
    report = inspect(video, thorough=True)
    assert any(t.detector == "ocr_explicit_label" for t in report.traces), report.to_dict()
    assert report.tier == "suspected"


def test_lm6_c2pa_manifest_is_validated_and_is_a_trace(tmp_path: Path) -> None:
    chain = c2pa.make_dev_chain(tmp_path / "c2pa")
    identity = c2pa.SigningIdentity.from_files(chain.chain, chain.key)
    signed = c2pa.sign(_photo(), "jpeg", identity)
    anchors = chain.root.read_bytes()
    report = inspect(signed, trust_anchors=anchors)
    assert report.c2pa["present"] and report.c2pa["state"] == "Trusted"
    assert report.tier == "suspected"
    [trace] = [t for t in report.traces if t.detector == "c2pa"]
    assert "trainedAlgorithmicMedia" in trace.detail and "Trusted" in trace.detail
    # Without the anchor the manifest is intact but not trusted; tampering makes it invalid.
    assert inspect(signed).c2pa["state"] == "Valid"
    broken = bytearray(signed)
    broken[-200] ^= 0xFF  # inside the entropy-coded image data, covered by the hard binding
    tampered = inspect(bytes(broken), trust_anchors=anchors)
    assert tampered.c2pa["state"] == "Invalid"
    assert any(f.startswith("C2PA: the manifest does not validate") for f in tampered.findings)
    assert inspect(_photo()).c2pa["present"] is False
