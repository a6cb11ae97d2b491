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
from synthgate.moderation import service as moderation_service
from synthgate.moderation.policy import DEFAULT_POLICY
from synthgate.moderation.policy import Stage as ModerationStage
from synthgate.moderation.screener import Moderation, StreamScreener, build_screener, library_cache
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
        terms = list(ctx.settings.blocked_terms) + list(ctx.service.settings.get("blocked_terms", []))
        policy, policy_version = moderation_service.policy_for(session, ctx.service)
        ctx.moderation = Moderation(build_screener(library_cache.get(session), terms), policy, policy_version)
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
        ctx.verdicts[self.name] = record
        ctx.note(
            self.name,
            action=verdict.action,
            findings=len(verdict.findings),
            categories=sorted({f.category for f, _ in verdict.findings}),
            policy=verdict.policy_version,
            detectors=verdict.detectors,
        )
        decisive = verdict.decisive
        if streamed or decisive is None or verdict.action not in ("block", "review"):
            return
        held = verdict.action == "review"
        raise Refused(
            "moderation.held" if held else "moderation.blocked",
            "DSP-10",
            f"the {stage} contains content this service "
            + ("holds for human review" if held else "does not allow"),
            stage=self.name,
            category=decisive.category,
            span=list(decisive.span) if decisive.span else None,
        )


@stages.register("input_screening")
class InputScreeningStage(_ScreeningStage):
    """DSP-10: review the input before anything is generated."""

    name = "input_screening"
    phase: Phase = "check"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        self._screen(ctx, session, ctx.input_text)


@stages.register("output_screening")
class OutputScreeningStage(_ScreeningStage):
    """DSP-10: review the synthesis result before it is delivered."""

    name = "output_screening"
    phase: Phase = "complete"

    def run(self, ctx: GenerationContext, session: Session) -> None:
        if ctx.output_text is not None:
            # A stream was screened incrementally (nothing blocked got out); record the full verdict.
            self._screen(ctx, session, ctx.output_text, streamed=ctx.streamed)


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
        files = ctx.delivered_media
        if delivered is not None:
            output_sha256 = hashlib.sha256(delivered.encode()).hexdigest()
        else:
            # Files only: the digest of the first file, so a single delivered image is found by
            # its plain sha256; every file's digest is in the record's digests.
            assert files, "a completed generation has an output text or files"
            output_sha256 = files[0].sha256
        generation = Generation(
            produce_id=ctx.produce_id,
            service_id=ctx.service.id,
            account_id=ctx.account.id,
            mode=ctx.mode,
            medium=files[0].medium if files and delivered is None else ctx.medium,
            operation=ctx.operation,
            model=ctx.model,
            streamed=ctx.streamed,
            input_sha256=ctx.input_sha256,
            output_sha256=output_sha256,
            input_chars=len(ctx.input_text),
            output_chars=len(delivered or ""),
            input_media=ctx.input_media_digests(),
            labels=ctx.labels,
            verdicts=ctx.verdicts,
        )
        session.add(generation)
        ctx.generation = generation
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
