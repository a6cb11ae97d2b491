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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from synthgate.config import Settings
from synthgate.errors import SynthgateError
from synthgate.keys import KeyStore
from synthgate.labeling import c2pa
from synthgate.labeling.explicit import ExplicitOptions, labeler_for
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.kind,
            "medium": self.medium,
            "label": self.label.to_dict(),
            "explicit": self.explicit,
            "c2pa": self.c2pa,
            "bytes": len(self.data),
            "notes": self.notes,
        }


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


class LabelService:
    """Labels files for one deployment (its settings, keys and certificates)."""

    def __init__(self, settings: Settings, keys: KeyStore | None = None) -> None:
        self.settings = settings
        self.keys = keys or KeyStore(settings)
        self.options = explicit_options(settings)

    @cached_property
    def binding_key(self) -> Ed25519PrivateKey:
        # The same key `synthgate inspect` verifies with (KeyStore.labeling_signing_key).
        return self.keys.labeling_signing_key

    @property
    def binding_verifier(self) -> Ed25519PublicKey:
        return self.binding_key.public_key()

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
        if request.explicit:
            if medium in ("image", "audio", "video"):
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

        label = bind(label, data, self.binding_key, limits=self.options.limits)
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
        return LabelResult(data, kind, medium, label, explicit, status, notes)
