from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from synthgate.labeling.implicit import (
    AigcLabel,
    bind,
    check_binding,
    content_digest,
    read_labels,
    write_label,
)
from synthgate.labeling.inspect import inspect
from synthgate.labeling.propagate import propagate
from tests.labeling.implicit import media_factory as mf
from tests.labeling.implicit.conftest import PLATFORM

KEY = Ed25519PrivateKey.generate()


def _edit_pixel(png: bytes) -> bytes:
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    img.putpixel((0, 0), (0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_gbe_binding_tells_bound_changed_forged_unsigned(label: AigcLabel) -> None:
    png = mf.image("PNG")
    bound = bind(label, png, KEY)
    labeled = write_label(png, bound)
    assert check_binding(read_labels(labeled)[0].label, labeled, KEY.public_key()) == "bound"  # type: ignore[arg-type]
    edited = write_label(_edit_pixel(png), bound)
    assert check_binding(bound, edited, KEY.public_key()) == "content_changed"
    tampered = AigcLabel(**{**bound.to_dict(), "ProduceID": "gen-9999"})
    assert check_binding(tampered, labeled, KEY.public_key()) == "forged"
    other_key = Ed25519PrivateKey.generate()
    assert check_binding(bind(label, png, other_key), labeled, KEY.public_key()) == "forged"
    assert check_binding(label, labeled, KEY.public_key()) == "unsigned"


def test_gbe_digest_is_over_decoded_content_not_metadata(label: AigcLabel) -> None:
    for data in (mf.image("JPEG"), mf.wav(), "正文\n".encode()):
        assert content_digest(write_label(data, label)) == content_digest(data)


def test_lm6_tiers_labeled_declared_traced_clean(label: AigcLabel) -> None:
    png = mf.image("PNG")
    assert inspect(write_label(png, label)).tier == "generated"
    assert inspect(png, declared=True).tier == "possibly"
    traced = "今天的天气很好。\n\n本内容由人工智能生成\n".encode()
    report = inspect(traced)
    assert report.tier == "suspected"
    assert any("explicit_label" in r for r in report.reasons)
    clean = inspect(png)
    assert clean.tier == "none" and clean.labels == []


def test_gb61_two_labels_reported_non_conformant_and_writing_fixes_it(label: AigcLabel) -> None:
    twice = _add_text_chunk(write_label(mf.image("PNG"), label), label)
    report = inspect(twice)
    assert report.multiple_labels and not report.conformant
    assert any("GB-6.1" in f for f in report.findings)
    fixed = inspect(write_label(twice, label))
    assert fixed.conformant and len(fixed.labels) == 1


def _add_text_chunk(png: bytes, label: AigcLabel) -> bytes:
    from synthgate.labeling.implicit.png import chunk

    return png[:-12] + chunk(b"tEXt", b"AIGC\x00" + label.to_json().encode()) + png[-12:]


def test_lm6_propagate_keeps_production_fields_and_binding(label: AigcLabel) -> None:
    png = mf.image("PNG")
    labeled = write_label(png, bind(label, png, KEY))
    out = propagate(labeled, platform=PLATFORM, content_id="post-77", signer=KEY)
    (found,) = read_labels(out)
    assert found.label is not None
    assert (found.label.ContentProducer, found.label.ProduceID) == (label.ContentProducer, label.ProduceID)
    assert (found.label.ContentPropagator, found.label.PropagateID) == (PLATFORM, "post-77")
    assert found.label.ReservedCode2.startswith("sg1p.")
    assert check_binding(found.label, out, KEY.public_key()) == "bound"
    declared = read_labels(propagate(png, platform=PLATFORM, content_id="p-2", declared=True))
    assert declared[0].label is not None and declared[0].label.Label == "2"
    from synthgate.errors import InvalidInput

    with pytest.raises(InvalidInput, match="nothing to propagate"):
        propagate(png, platform=PLATFORM, content_id="p-3")


def test_lm6_cli_inspect_json_and_propagate(label: AigcLabel, tmp_path: Path, settings: object) -> None:
    from synthgate.cli import app

    src = tmp_path / "in.bin"  # no extension: the format comes from the content
    src.write_bytes(write_label(mf.image("JPEG"), label))
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(src), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["container"] == "jpeg" and data["tier"] == "generated"
    assert data["labels"][0]["label"]["ProduceID"] == "gen-0001" and data["binding"]["status"] == "unsigned"
    dest = tmp_path / "out.jpg"
    result = runner.invoke(
        app, ["propagate", str(src), "--platform", PLATFORM, "--content-id", "c-1", "-o", str(dest)]
    )
    assert result.exit_code == 0, result.output
    assert read_labels(dest.read_bytes())[0].label.PropagateID == "c-1"  # type: ignore[union-attr]
    bad = tmp_path / "bad.png"
    bad.write_bytes(mf.image("PNG")[:100])
    result = runner.invoke(app, ["inspect", str(bad), "--json"])
    assert result.exit_code == 2 and "truncated" in result.output


def test_gbe_image_digest_from_memory_equals_decoded_digest(label: AigcLabel) -> None:
    from PIL import Image

    from synthgate.labeling.implicit.binding import image_digest

    png = mf.image("PNG")
    frames = [Image.open(io.BytesIO(png)).convert("RGB")]
    assert image_digest("png", frames) == content_digest(png)
    bound = bind(label, png, KEY, digest=image_digest("png", frames))
    assert check_binding(bound, write_label(png, bound), KEY.public_key()) == "bound"


def test_gb61_wav_info_copy_is_folded_into_the_one_chunk(label: AigcLabel) -> None:
    from synthgate.labeling.implicit import _riff

    wav = mf.wav()
    chunks = _riff.parse(wav, b"WAVE")
    info = b"INFO" + b"AIGC" + len(label.to_json()).to_bytes(4, "little") + label.to_json().encode()
    info += b"\x00" * (len(label.to_json()) & 1) + b"INAM" + (4).to_bytes(4, "little") + b"song"
    doubled = _riff.build(b"WAVE", [*chunks, (b"LIST", info), (b"AIGC", label.to_json().encode())])
    assert len(read_labels(doubled)) == 2
    fixed = write_label(doubled, label)
    assert [f.form for f in read_labels(fixed)] == ["riff-chunk"]
    assert b"INAM\x04\x00\x00\x00song" in fixed  # the other INFO entries stay
