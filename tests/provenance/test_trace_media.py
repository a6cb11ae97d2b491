"""Generation records for delivered files and tracing a file back from whatever survives of it:
the metadata label, the invisible watermark, the perceptual hash (PDQ) — DSP-16, LM-9, DSP-21."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.devtools.demo import CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.labeling.service import LabelRequest, LabelService
from synthgate.labeling.watermark import watermark_image_bytes
from synthgate.media import MediaItem
from synthgate.provenance import digests
from synthgate.provenance import service as provenance
from synthgate.provenance.models import GenerationDigest
from tests.audit.test_tamper import _cli
from tests.conftest import ServiceWithKey, ready_user


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _stripped_and_recompressed(data: bytes, scale: float = 0.75, quality: int = 70) -> bytes:
    """What a re-upload does: decode, resize, re-encode as JPEG; no metadata survives."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        small = rgb.resize((int(rgb.width * scale), int(rgb.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _deliver_image(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, make: str = "plain", user: str = "u1"
) -> tuple[str, bytes]:
    """Generate one image through the two-phase API; ``make`` says what the model's output carries."""
    ready_user(gateway, sms, chat.service, user)
    ticket = gateway.check("chat", user, prompt="draw an astronaut", medium="image")
    image = _png(samples.astronaut())
    if make == "watermark":
        # Stands in for the watermark stage: the service's key, the payload naming this generation.
        marked = watermark_image_bytes(
            image, gateway.keys.watermark_key(chat.service.id), digests.watermark_payload(ticket.produce_id)
        )
        assert marked.embedded, marked.reason
        image = marked.data
    elif make == "label":
        labeled = LabelService(gateway.settings, gateway.keys).label(
            image,
            LabelRequest(
                producer=chat.service.provider_code, produce_id=ticket.produce_id, explicit=False, c2pa=False
            ),
        )
        image = labeled.data
    done = gateway.complete("chat", ticket.ticket_id, media=[image])
    [delivered] = done.media
    return done.produce_id, delivered.data


def _trace(gateway: Gateway, data: bytes, matchers: list[str] | None = None) -> provenance.TraceResult:
    with gateway.db.session() as session:
        return provenance.trace(
            session,
            provenance.TraceInput(data=data, keys=gateway.keys),
            actor="operator:test",
            show_account=True,
            matchers=matchers,
        )


def test_dsp16_lm9_record_stage_indexes_file_digests_and_logs_the_unlabeled_recipient(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    # The default pipeline labels the file (media_label stage): an ordinary, labeled delivery.
    labeled_id, _ = _deliver_image(gateway, sms, chat, user="u2")
    with gateway.db.session() as session:
        labeled = provenance.get_generation(session, labeled_id)
    assert "explicit_media" in labeled.labels and not labeled.delivered_unlabeled
    # Without a stage that labels files, the file goes out unlabeled: LM-9 applies.
    stages = [name for name in gateway.settings.stages if name != "media_label"]
    gateway = Gateway(gateway.settings.model_copy(update={"stages": stages}), sms_sender=sms)
    produce_id, delivered = _deliver_image(gateway, sms, chat)
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, produce_id)
        rows = session.scalars(
            select(GenerationDigest).where(GenerationDigest.generation_id == generation.id)
        ).all()
        lm9 = session.scalars(
            select(AuditEvent).where(
                AuditEvent.event_type == "provenance.delivered_unlabeled", AuditEvent.subject_id == produce_id
            )
        ).all()
    item = MediaItem.from_bytes(delivered)
    assert generation.medium == "image" and generation.output_sha256 == item.sha256
    assert generation.digests["sha256"] == [item.sha256]
    [pdq] = generation.digests["pdq"]
    assert pdq == digests.image_pdq(delivered) and len(pdq) == 64
    assert generation.digests["watermark"] == [digests.watermark_payload(produce_id).hex()]
    assert {(r.kind, r.value) for r in rows} == {
        ("sha256", item.sha256),
        ("pdq", pdq),
        ("watermark", digests.watermark_payload(produce_id).hex()),
    }
    # No stage applied an explicit label to the file: LM-9 — the record says so and names the
    # recipient, and the log has it too.
    assert generation.delivered_unlabeled and generation.unlabeled_recipient == generation.account_id
    [event] = lm9
    assert event.data == {"recipient": generation.account_id, "clause": "LM-9"}


def test_lm9_a_labeled_text_is_not_an_unlabeled_delivery(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    ready_user(gateway, sms, chat.service)
    ticket = gateway.check("chat", "u1", prompt="a poem")
    done = gateway.complete("chat", ticket.ticket_id, "roses")
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, done.produce_id)
    assert "explicit" in generation.labels
    assert not generation.delivered_unlabeled and generation.unlabeled_recipient is None
    assert generation.output_sha256 == provenance.hashlib.sha256(done.output.encode()).hexdigest()  # type: ignore[union-attr]


def test_dsp21_stripped_and_recompressed_image_is_traced_by_pdq(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    produce_id, delivered = _deliver_image(gateway, sms, chat)
    _other, _ = _deliver_image(gateway, sms, chat, user="u2")  # a second generation of the same picture
    found = _stripped_and_recompressed(delivered)
    assert MediaItem.from_bytes(found).container == "jpeg"
    result = _trace(gateway, found)
    by_id = {m["generation"]["produce_id"]: m for m in result.matches}
    assert produce_id in by_id
    evidence = by_id[produce_id]["evidence"]
    matchers = {e["matcher"] for e in evidence}
    assert "pdq" in matchers and not matchers & {"sha256", "metadata_label", "c2pa"}  # all gone
    [pdq] = [e for e in evidence if e["matcher"] == "pdq"]
    assert 0.5 <= pdq["strength"] < 0.86
    # An unrelated photograph is not a match.
    assert _trace(gateway, _png(samples.chelsea()), matchers=["pdq"]).matches == []


def test_dsp21_watermarked_image_is_traced_after_recompression_to_its_generation(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    plain_id, _ = _deliver_image(gateway, sms, chat)
    produce_id, delivered = _deliver_image(gateway, sms, chat, make="watermark", user="u2")
    found = _stripped_and_recompressed(delivered, scale=1.0, quality=80)
    result = _trace(gateway, found, matchers=["watermark"])
    [match] = result.matches  # the PDQ twin (plain_id) has no mark: only the payload's owner
    assert match["generation"]["produce_id"] == produce_id != plain_id
    assert match["evidence"][0]["matcher"] == "watermark" and match["strength"] == 0.95
    # Without the key store nothing can be decoded, and nothing is claimed.
    with gateway.db.session() as session:
        keyless = provenance.trace(
            session, provenance.TraceInput(data=found), actor="t", show_account=False, matchers=["watermark"]
        )
    assert keyless.matches == []


def test_dsp21_metadata_label_names_the_generation_and_its_binding(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    produce_id, delivered = _deliver_image(gateway, sms, chat, make="label")
    intact = _trace(gateway, delivered, matchers=["metadata_label"])
    [match] = intact.matches
    assert match["generation"]["produce_id"] == produce_id
    assert match["evidence"][0]["strength"] == 1.0 and "bound" in match["evidence"][0]["detail"]
    # Pixels changed, label copied along: still this generation, but the binding says it changed.
    with Image.open(io.BytesIO(delivered)) as image:
        pixels = np.asarray(image.convert("RGB")).copy()
    pixels[:40, :40] = 0
    edited = LabelService(gateway.settings, gateway.keys).label(
        _png(pixels),
        LabelRequest(producer=chat.service.provider_code, produce_id=produce_id, explicit=False, c2pa=False),
    )
    assert _trace(gateway, edited.data, matchers=["metadata_label"]).matches[0]["strength"] == 1.0
    # A label naming a produce id nobody generated finds nothing.
    forged = LabelService(gateway.settings, gateway.keys).label(
        _png(pixels),
        LabelRequest(producer=chat.service.provider_code, produce_id="0" * 26, explicit=False, c2pa=False),
    )
    assert _trace(gateway, forged.data, matchers=["metadata_label"]).matches == []
    assert set(provenance.trace_matchers.names()) >= {
        "sha256",
        "produce_id",
        "metadata_label",
        "watermark",
        "pdq",
    }


def test_video_frames_are_hashed_and_a_reencoded_copy_matches(tmp_path: Path) -> None:
    source, copy = tmp_path / "a.mp4", tmp_path / "b.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=3",
         "-pix_fmt", "yuv420p", str(source)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-vf", "scale=240:180", "-crf", "35", str(copy)],
        check=True,
    )
    original = digests.video_pdqs(source.read_bytes())
    again = digests.video_pdqs(copy.read_bytes())
    assert 1 < len(original) <= digests.VIDEO_FRAMES
    assert digests.hamming_matches(again, original)
    assert digests.video_pdqs(b"not a video") == []


@pytest.mark.parametrize("distance", [0, 31, 32])
def test_pdq_match_threshold_is_31_bits(distance: int) -> None:
    base = bytes(32)
    flipped = bytearray(base)
    for bit in range(distance):
        flipped[bit // 8] |= 0x80 >> (bit % 8)
    hits = digests.hamming_matches([base.hex()], [bytes(flipped).hex()])
    assert hits == ([(0, distance)] if distance <= 31 else [])


def test_dsp21_c2pa_manifest_names_the_generation_and_its_signer_sets_the_strength(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, tmp_path: Path
) -> None:
    from synthgate.labeling import c2pa

    produce_id, plain = _deliver_image(gateway, sms, chat)  # no C2PA chain yet: no manifest
    c2pa.make_dev_chain(gateway.settings.data_dir / "c2pa")  # our signing chain and trust anchor
    ours = LabelService(gateway.settings, gateway.keys).label(
        plain,
        LabelRequest(producer=chat.service.provider_code, produce_id=produce_id, explicit=False, c2pa=True),
    )
    assert ours.c2pa == "signed"

    def c2pa_trace(data: bytes) -> list[dict[str, object]]:
        with gateway.db.session() as session:
            return provenance.trace(
                session,
                provenance.TraceInput(data=data, keys=gateway.keys, settings=gateway.settings),
                actor="t",
                show_account=False,
                matchers=["c2pa"],
            ).matches

    [trusted] = c2pa_trace(ours.data)
    assert trusted["generation"]["produce_id"] == produce_id and trusted["strength"] == 1.0  # type: ignore[index]
    # Somebody else's certificate signing a manifest that quotes our produce id: weaker evidence.
    stranger = c2pa.make_dev_chain(tmp_path / "stranger")
    forged = c2pa.sign(
        plain,
        "png",
        c2pa.SigningIdentity.from_files(stranger.chain, stranger.key, None),
        aigc={"Label": "1", "ProduceID": produce_id},
    )
    [weaker] = c2pa_trace(forged)
    assert weaker["strength"] == 0.8
    assert c2pa_trace(plain) == []


def test_dsp16_record_names_the_filed_algorithm_and_model_version(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey
) -> None:
    from synthgate.governance.models import Algorithm, AlgorithmVersion, Service

    with gateway.db.session() as session:
        algorithm = Algorithm(
            name="chat model",
            provider_name="demo",
            service_form="API",
            application_domain="chat",
            algorithm_type="generation",
        )
        session.add(algorithm)
        session.flush()
        session.add(AlgorithmVersion(algorithm_id=algorithm.id, version="2.1", models=["m-large"]))
        service = session.get(Service, chat.service.id)
        assert service is not None
        service.algorithm_id = algorithm.id
        algorithm_id = algorithm.id
    chat.service.algorithm_id = algorithm_id  # the test's copy, as the gateway reloads services
    ready_user(gateway, sms, chat.service)
    records = []
    for model in ("m-large", "m-unlisted"):
        ticket = gateway.check("chat", "u1", prompt="hi", model=model)
        done = gateway.complete("chat", ticket.ticket_id, "hello")
        with gateway.db.session() as session:
            records.append(provenance.get_generation(session, done.produce_id))
    assert [(g.model, g.algorithm_id, g.model_version) for g in records] == [
        ("m-large", algorithm_id, "2.1"),
        ("m-unlisted", algorithm_id, None),
    ]


def test_dsp18_dsp21_pipeline_watermark_traces_a_stripped_reencoded_resized_image_from_the_cli(
    gateway: Gateway, sms: CapturingSmsSender, chat: ServiceWithKey, tmp_path: Path
) -> None:
    """Issue 4's done-when: the pipeline's own watermark (not a stand-in) ties a re-upload to its
    generation after metadata stripping, a resize and a JPEG re-encode, through ``synthgate trace``."""
    produce_id, delivered = _deliver_image(gateway, sms, chat)
    with gateway.db.session() as session:
        [media_labels] = provenance.get_generation(session, produce_id).labels["media"]
    assert media_labels["watermark"]["embedded"] is True, media_labels
    found = tmp_path / "reupload.jpg"
    found.write_bytes(_stripped_and_recompressed(delivered, scale=0.75, quality=75))
    env = {"SYNTHGATE_DATA_DIR": str(gateway.settings.data_dir)}
    if gateway.settings.database_url:
        env["SYNTHGATE_DATABASE_URL"] = gateway.settings.database_url
    result = _cli(["trace", str(found), "--json"], **env)
    assert result.returncode == 0, result.stderr
    matches = {m["generation"]["produce_id"]: m for m in json.loads(result.stdout)["matches"]}
    assert produce_id in matches
    evidence = {e["matcher"]: e for e in matches[produce_id]["evidence"]}
    assert "watermark" in evidence and not evidence.keys() & {"sha256", "metadata_label", "c2pa"}
