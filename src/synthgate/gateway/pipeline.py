"""The pipeline: stages composed per request, in two phases around the model call.

``check`` runs before the model (identity, rules, input screening); ``complete`` runs on the
model's output (output screening, labels, the generation record). Each stage is a small object
from a registry, so a deployment can reorder, replace or add stages (consent, watermark, C2PA)
by name. Each stage leaves an audit event; the events of a request are written in the same
transaction as the ticket or generation they lead to, so a failure anywhere leaves nothing
half-written.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from synthgate import metrics
from synthgate.config import Settings
from synthgate.errors import Refused
from synthgate.governance.models import Service
from synthgate.identity import service as identity
from synthgate.identity.models import Account
from synthgate.keys import KeyStore
from synthgate.labeling.text import TextLabel
from synthgate.media import MediaItem
from synthgate.moderation.policy import DEFAULT_POLICY, Verdict
from synthgate.moderation.policy import Stage as ModerationStage
from synthgate.moderation.screener import (
    Moderation,
    StreamScreener,
    build_moderation,
    build_screener,
    library_cache,
)
from synthgate.provenance import service as provenance
from synthgate.provenance.models import Generation
from synthgate.registry import Registry
from synthgate.rules import service as rules

Phase = Literal["check", "complete"]

_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_produce_id() -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, 26 Crockford base-32 characters.

    Time-ordered (records cluster by time) and inside the GB 45438 Annex E character set.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ULID_ALPHABET[rem])
    return "".join(reversed(chars))


@dataclass
class GenerationContext:
    """Everything a request carries through the stages."""

    settings: Settings
    keys: KeyStore
    service: Service
    external_user: str
    mode: Literal["two_phase", "proxy"]
    input_text: str
    medium: str = "text"
    model: str | None = None
    operation: str = "generate"
    """What the request does: ``generate``, or an edit such as ``face.swap`` / ``voice.clone``."""
    input_media: list[MediaItem] = field(default_factory=list)
    """Input files, checked before the model runs; only their digests are kept (GAI-11)."""
    output_media: list[MediaItem] = field(default_factory=list)
    """The model's output files, as handed to the complete phase."""
    labeled_media: list[MediaItem] | None = None
    """What is delivered: the output files with their labels (a labeling stage sets it)."""
    explicit_label_waived: bool = False
    """LM-9: the user asked for the output without the explicit label (implicit labels stay)."""
    produce_id: str = field(default_factory=new_produce_id)
    account: Account | None = None
    account_id: str | None = None
    """Kept as a plain value: a rolled-back transaction expires ``account``."""
    output_text: str | None = None
    labeled_output: str | None = None
    streamed: bool = False
    verdicts: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    generation: Generation | None = None
    current_stage: str = ""
    moderation: Moderation | None = None
    """Detectors and policy of this request, fixed at its first screening."""

    @property
    def input_sha256(self) -> str:
        """The digest of the text input alone; input files have digests of their own."""
        return hashlib.sha256(self.input_text.encode()).hexdigest()

    @property
    def delivered_media(self) -> list[MediaItem]:
        return self.labeled_media if self.labeled_media is not None else self.output_media

    def input_media_digests(self) -> list[dict[str, str]]:
        return [
            {"sha256": item.sha256, "container": item.container, "medium": item.medium, "role": item.role}
            for item in self.input_media
        ]

    def note(self, stage: str, **data: Any) -> None:
        self.events.append((stage, data))


class Stage(Protocol):
    name: str
    phase: Phase

    def run(self, ctx: GenerationContext, session: Session) -> None: ...


stages: Registry[Stage] = Registry("stages")


@stages.register("identity")
class IdentityStage:
    """DSP-9: a known, verified, not barred account."""

    name = "identity"
    phase: Phase = "check"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        account = ctx.account or identity.get_account_or_none(session, ctx.service, ctx.external_user)
        if account is None:
            raise Refused(
                "identity.unknown_account",
                "DSP-9",
                "this user has no account with the service; register and verify it first",
            )
        ctx.account = account
        ctx.account_id = account.id
        identity.ensure_may_generate(account)
        ctx.note(self.name, account=account.id, verification=account.verification_method)


@stages.register("rules")
class RulesStage:
    """DSP-8: the current rules version accepted."""

    name = "rules"
    phase: Phase = "check"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        assert ctx.account is not None, "the rules stage runs after the identity stage"
        version = rules.ensure_current_accepted(session, ctx.service, ctx.account)
        ctx.note(self.name, version=version)


def moderation_for(ctx: GenerationContext, session: Session) -> Moderation:
    """The request's detectors and policy, fixed at its first screening (input and output agree)."""
    if ctx.moderation is None:
        # The library, term lists, policy, remote guards, media detectors and hash banks of the service.
        ctx.moderation = build_moderation(session, ctx.service, ctx.settings.blocked_terms)
    return ctx.moderation


def service_detector(ctx: GenerationContext) -> StreamScreener:
    """What a stream guard screens an output with: the request's detectors, stopping on what the
    policy blocks or holds. Without an input screening (no session here) it uses the library
    version this process compiled last and the built-in policy."""
    if ctx.moderation is None:
        terms = list(ctx.settings.blocked_terms) + list(ctx.service.settings.get("blocked_terms", []))
        ctx.moderation = Moderation(build_screener(library_cache.last(), terms), DEFAULT_POLICY, "builtin")
    return ctx.moderation.stream(ctx.medium)


class _ScreeningStage:
    name = ""
    phase: Phase = "check"

    def _screen(self, ctx: GenerationContext, session: Session, text: str, *, streamed: bool = False) -> None:
        stage: ModerationStage = "input" if self.phase == "check" else "output"
        verdict = moderation_for(ctx, session).verdict(text, stage, ctx.medium)
        record = verdict.as_dict()
        if streamed:
            # The stream guard already stopped anything the policy blocks; this is the full record.
            record["streamed"] = True
        self._decide(ctx, self.name, verdict, record, refuse=not streamed)

    def _screen_media(self, ctx: GenerationContext, session: Session, items: list[MediaItem]) -> None:
        """Files through the media detectors (hash banks, NSFW, text in images), judged by the policy."""
        if not items:
            return
        stage: ModerationStage = "input" if self.phase == "check" else "output"
        verdict = moderation_for(ctx, session).verdict_media(items, stage)
        self._decide(ctx, f"{self.name}_media", verdict, verdict.as_dict(), refuse=True)

    def _decide(
        self, ctx: GenerationContext, name: str, verdict: Verdict, record: dict[str, Any], *, refuse: bool
    ) -> None:
        stage = verdict.stage
        ctx.verdicts[name] = record
        ctx.note(
            name,
            action=verdict.action,
            findings=len(verdict.findings),
            categories=sorted({f.category for f, _ in verdict.findings}),
            policy=verdict.policy_version,
            detectors=verdict.detectors,
        )
        decisive = verdict.decisive
        if not refuse or decisive is None or verdict.action not in ("block", "review"):
            return
        held = verdict.action == "review"
        raise Refused(
            "moderation.held" if held else "moderation.blocked",
            "DSP-10",
            f"the {stage} contains content this service "
            + ("holds for human review" if held else "does not allow"),
            stage=name,
            category=decisive.category,
            detector=decisive.detector,
            span=list(decisive.span) if decisive.span else None,
        )


@stages.register("input_screening")
class InputScreeningStage(_ScreeningStage):
    """DSP-10: review the input before anything is generated."""

    name = "input_screening"
    phase: Phase = "check"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        self._screen(ctx, session, ctx.input_text)
        self._screen_media(ctx, session, ctx.input_media)


@stages.register("output_screening")
class OutputScreeningStage(_ScreeningStage):
    """DSP-10: review the synthesis result before it is delivered."""

    name = "output_screening"
    phase: Phase = "complete"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        if ctx.output_text is not None:
            # A stream was screened incrementally (nothing blocked got out); record the full verdict.
            self._screen(ctx, session, ctx.output_text, streamed=ctx.streamed)
        self._screen_media(ctx, session, ctx.output_media)


def text_label_for(ctx: GenerationContext) -> TextLabel:
    service_settings = ctx.service.settings
    return TextLabel(
        text=service_settings.get("label_text") or ctx.settings.label_text,
        position=service_settings.get("label_position") or ctx.settings.label_position,
    )


@stages.register("explicit_label")
class ExplicitLabelStage:
    """DSP-17 / GB-5.1: the conspicuous label inside the delivered text."""

    name = "explicit_label"
    phase: Phase = "complete"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        if ctx.output_text is None:
            return  # files are labeled by the media_label stage
        if ctx.explicit_label_waived:
            # LM-9: delivered as the user asked, without the label; the record names the recipient.
            ctx.labeled_output = ctx.output_text
            ctx.note(self.name, waived=True)
            return
        label = text_label_for(ctx)
        if ctx.labeled_output is None:  # a stream applies the label as it goes
            ctx.labeled_output = label.apply(ctx.output_text)
        ctx.labels["explicit"] = label.describe()
        ctx.note(self.name, position=label.position)


@stages.register("record")
class RecordStage:
    """DSP-16 logs: the generation record, with digests only (GAI-11: no raw inputs kept)."""

    name = "record"
    phase: Phase = "complete"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        assert ctx.account is not None
        delivered = ctx.labeled_output if ctx.labeled_output is not None else ctx.output_text
        assert delivered is not None or ctx.delivered_media, "a completed generation has an output"
        unlabeled = not provenance.explicitly_labeled(ctx.labels)
        algorithm_id = getattr(ctx.service, "algorithm_id", None)
        ctx.generation = provenance.record_generation(
            session,
            produce_id=ctx.produce_id,
            service_id=ctx.service.id,
            account_id=ctx.account.id,
            mode=ctx.mode,
            medium=ctx.medium,
            operation=ctx.operation,
            model=ctx.model,
            model_version=provenance.model_version_for(session, algorithm_id, ctx.model),
            algorithm_id=algorithm_id,
            streamed=ctx.streamed,
            input_sha256=ctx.input_sha256,
            input_chars=len(ctx.input_text),
            input_media=ctx.input_media_digests(),
            output_text=delivered,
            delivered_media=ctx.delivered_media,
            labels=ctx.labels,
            verdicts=ctx.verdicts,
            delivered_unlabeled=unlabeled,
            unlabeled_recipient=ctx.account.id if unlabeled else None,
            actor=f"service:{ctx.service.slug}",
        )
        ctx.note(self.name, produce_id=ctx.produce_id)


def build_stages(names: list[str]) -> list[Stage]:
    return [stages.create(name) for name in names]


def run_phase(pipeline: list[Stage], phase: Phase, ctx: GenerationContext, session: Session) -> None:
    for stage in pipeline:
        if stage.phase != phase:
            continue
        ctx.current_stage = stage.name
        started = time.perf_counter()
        try:
            stage.run(ctx, session)
        except Refused as refusal:
            refusal.stage = refusal.stage or stage.name
            raise
        except Exception:
            metrics.PIPELINE_FAILURES.labels(stage=stage.name).inc()
            raise
        finally:
            metrics.STAGE_SECONDS.labels(stage=stage.name).observe(time.perf_counter() - started)
