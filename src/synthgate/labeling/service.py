"""Full labeling of one file: explicit label, metadata label bound to the content, C2PA manifest.

The order matters and is fixed here once:

1. the **explicit** label (GB-5, LM-4) changes the content itself, so it comes first;
2. ``ReservedCode1`` **binds** the metadata label to the decoded content *after* the explicit label
   is in it, so a reader checks the content a user actually received;
3. the **metadata** label (GB-E, LM-5) is written without re-encoding;
4. the **C2PA** manifest hard-binds the final bytes, so it is embedded last.

The result is read back before it is returned: a file leaves only with exactly one metadata label
equal to the one written; anything else is an error, never a silently unlabeled output.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from synthgate.config import Settings
from synthgate.errors import SynthgateError
from synthgate.keys import KeyStore
from synthgate.labeling import c2pa
from synthgate.labeling.explicit import ExplicitOptions, labeler_for
from synthgate.labeling.explicit.image import ImageLabeler
from synthgate.labeling.implicit.binding import (
    PREFIX,
    SCHEMES,
    SM2_PREFIX,
    Signer,
    Verifier,
    image_digest,
    scheme_of,
)
from synthgate.labeling.implicit.sm2 import Sm2PrivateKey
from synthgate.labeling.text import TextLabel
from synthgate.media import MediaLimits
from synthgate.media.sniff import AUDIO_KINDS, IMAGE_KINDS, TEXT_KINDS, VIDEO_KINDS, sniff


def medium_of(kind: str) -> str:
    if kind in IMAGE_KINDS:
        return "image"
    if kind in AUDIO_KINDS:
        return "audio"
    if kind in VIDEO_KINDS:
        return "video"
    if kind in TEXT_KINDS:
        return "text"
    return "document"


class LabelingFailed(SynthgateError):
    """The labeled output did not read back with exactly our label: nothing is returned."""

    status_code = 500
    code = "label.verify_failed"


@dataclass(frozen=True)
class LabelRequest:
    producer: str
    """The provider code (27 characters, GB-PC) written as ContentProducer."""
    produce_id: str | None = None
    """The content id; a new random one when not given."""
    explicit: bool = True
    c2pa: bool = True
    edited: bool = False
    """The output edits a user's file (C2PA ``c2pa.edited``) rather than being generated outright."""
    watermark: tuple[bytes, bytes] | None = None
    """(key, payload): also embed the invisible watermark (LM-5) where a codec carries it. It goes
    in after the explicit label and before the binding, which then covers the marked content."""


@dataclass
class LabelResult:
    data: bytes
    kind: str
    medium: str
    label: Any
    """The ``AigcLabel`` written (with its binding)."""
    explicit: str
    """``applied``, ``skipped`` (asked not to), or ``not_applicable`` (no visible form for this medium)."""
    c2pa: str
    """``signed``, ``skipped`` (asked not to or not configured) or ``unsupported`` (container)."""
    notes: list[str] = field(default_factory=list)
    watermark: dict[str, Any] | None = None
    """What the watermark codec did (``embedded`` true/false and why), when one was asked for."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "container": self.kind,
            "medium": self.medium,
            "label": self.label.to_dict(),
            "explicit": self.explicit,
            "c2pa": self.c2pa,
            "bytes": len(self.data),
            "notes": self.notes,
        }
        if self.watermark is not None:
            out["watermark"] = self.watermark
        return out


def explicit_options(settings: Settings) -> ExplicitOptions:
    return ExplicitOptions(
        text=settings.label_text,
        position=settings.label_image_position,
        style=settings.label_image_style,
        audio_cue=settings.label_audio_cue,
        audio_placement=tuple(settings.label_audio_placement),
        video_span=settings.label_video_span,
        video_seconds=settings.label_video_seconds,
        limits=MediaLimits.from_settings(settings),
    )


def c2pa_paths(settings: Settings) -> tuple[Path, Path, Path]:
    """(chain, key, trust anchors), defaulting to what ``synthgate certs dev`` writes."""
    base = settings.data_dir / "c2pa"
    return (
        settings.c2pa_cert_chain or base / "chain.pem",
        settings.c2pa_private_key or base / "signer.key",
        settings.c2pa_trust_anchors or base / "root.pem",
    )


def sm2_binding_key(keys: KeyStore) -> Sm2PrivateKey:
    """The deployment's SM2 binding key, derived from the master secret (same on every worker)."""
    return Sm2PrivateKey.from_seed(keys.derive("labeling/sm2-binding"))


def binding_signer(settings: Settings, keys: KeyStore) -> Signer:
    if settings.label_binding_algorithm == "sm2":
        return sm2_binding_key(keys)
    # The same key `synthgate inspect` verifies with (KeyStore.labeling_signing_key).
    return keys.labeling_signing_key


def binding_verifiers(keys: KeyStore) -> dict[str, Verifier]:
    """Verifiers for every binding scheme this deployment may have written, by prefix: a reader
    checks old Ed25519 labels after a switch to SM2 and the other way round."""
    return {PREFIX: keys.labeling_signing_key.public_key(), SM2_PREFIX: sm2_binding_key(keys).public_key()}


class LabelService:
    """Labels files for one deployment (its settings, keys and certificates)."""

    def __init__(self, settings: Settings, keys: KeyStore | None = None) -> None:
        self.settings = settings
        self.keys = keys or KeyStore(settings)
        self.options = explicit_options(settings)

    @cached_property
    def binding_key(self) -> Signer:
        """The configured ``ReservedCode1`` signer: Ed25519 (default) or SM2 with SM3."""
        return binding_signer(self.settings, self.keys)

    @property
    def binding_verifier(self) -> Verifier:
        return self.binding_key.public_key()  # type: ignore[attr-defined]

    @cached_property
    def binding_verifiers(self) -> dict[str, Verifier]:
        return binding_verifiers(self.keys)

    @cached_property
    def c2pa_identity(self) -> c2pa.SigningIdentity | None:
        if not self.settings.c2pa_enabled:
            return None
        chain, key, _ = c2pa_paths(self.settings)
        configured = self.settings.c2pa_cert_chain is not None or self.settings.c2pa_private_key is not None
        if not configured and not (chain.is_file() and key.is_file()):
            return None
        return c2pa.SigningIdentity.from_files(chain, key, self.settings.c2pa_tsa_url)

    @cached_property
    def trust_anchors(self) -> bytes | None:
        anchors = c2pa_paths(self.settings)[2]
        return anchors.read_bytes() if anchors.is_file() else None

    def label(self, data: bytes, request: LabelRequest) -> LabelResult:
        from synthgate.labeling.implicit import AigcLabel, bind, read_labels, write_label

        self.options.limits.check_bytes(data)
        kind = sniff(data)
        medium = medium_of(kind)
        notes: list[str] = []
        produce_id = request.produce_id or secrets.token_hex(16)
        # Validates the producer code and the Annex E character set before any work is done.
        label = AigcLabel(Label="1", ContentProducer=request.producer, ProduceID=produce_id)

        explicit = "skipped"
        digest: bytes | None = None
        scheme = scheme_of(self.binding_key)
        if request.explicit:
            if medium == "image" and request.watermark is None:
                # One decode for the whole label: the binding digests the frames just drawn on
                # when decoding the output would give exactly them (our lossless PNG writer).
                image_labeler = ImageLabeler()
                data, frames = image_labeler.apply_with_frames(data, kind, self.options)
                if frames is not None:
                    digest = image_digest(kind, frames, SCHEMES[scheme])
                explicit = "applied"
            elif medium in ("image", "audio", "video"):
                data = labeler_for(medium).apply(data, kind, self.options)
                explicit = "applied"
            elif kind == "markdown":
                text = data.decode("utf-8")
                data = TextLabel(self.settings.label_text, self.settings.label_position).apply(text).encode()
                explicit = "applied"
            else:
                explicit = "not_applicable"
                notes.append(
                    f"no explicit label form for {kind}; show the interface notice beside it (GB-5.5)"
                )

        watermark = None
        if request.watermark is not None:
            data, watermark = self._watermark(data, kind, medium, request.watermark)

        label = bind(label, data, self.binding_key, limits=self.options.limits, digest=digest)
        data = write_label(data, label)

        status = "skipped"
        if request.c2pa and kind not in c2pa.MIME_TYPES:
            status = "unsupported"
        elif request.c2pa and self.c2pa_identity is None and self.settings.c2pa_enabled:
            notes.append("C2PA skipped: no signing certificate (run `synthgate certs dev` or configure one)")
        elif request.c2pa and self.c2pa_identity is not None:
            data = c2pa.sign(data, kind, self.c2pa_identity, edited=request.edited, aigc=label.to_dict())
            status = "signed"

        found = read_labels(data)
        if len(found) != 1 or found[0].label is None or found[0].label.to_dict() != label.to_dict():
            raise LabelingFailed(
                f"the labeled {kind} did not read back with exactly one matching label ({len(found)} found)"
            )
        return LabelResult(data, kind, medium, label, explicit, status, notes, watermark)

    def _watermark(
        self, data: bytes, kind: str, medium: str, spec: tuple[bytes, bytes]
    ) -> tuple[bytes, dict[str, Any]]:
        from synthgate.labeling.watermark import embed_for_output
        from synthgate.media import MediaItem

        if medium not in ("image", "audio", "video"):
            return data, {
                "embedded": False,
                "medium": medium,
                "container": kind,
                "codec": None,
                "payload": None,
                "reason": f"{kind} files carry no media watermark",
            }
        key, payload = spec
        item = MediaItem(data=data, container=kind, medium=medium)  # type: ignore[arg-type]
        marked, record = embed_for_output(item, payload, key)
        if not record.embedded:
            return data, record.as_dict()
        # The watermark writes a fresh file: ICC profile, EXIF, XMP and text chunks come back
        # from the file before it, at the container level (no second re-encode).
        from synthgate.labeling.implicit.carry import carry_metadata

        return carry_metadata(data, marked.data, kind), record.as_dict()
