"""Writes tickets and refusals, and runs the pipeline's phases inside their transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from sqlalchemy.orm import Session

from synthgate import metrics
from synthgate.audit import service as audit
from synthgate.config import Settings
from synthgate.db import Database, utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound, Refused, SynthgateError
from synthgate.gateway.models import Refusal, Ticket
from synthgate.gateway.pipeline import GenerationContext, Stage, build_stages, run_phase, text_label_for
from synthgate.governance.models import Service
from synthgate.identity.models import Account
from synthgate.keys import KeyStore
from synthgate.media import MediaItem
from synthgate.moderation import review
from synthgate.provenance.models import Generation

log = structlog.get_logger("synthgate.gateway")


class PipelineFailure(SynthgateError):
    """An unexpected fault inside a stage. Nothing was generated or recorded; the fault is audited."""

    status_code = 500
    code = "pipeline.failed"


@dataclass(frozen=True)
class CheckResult:
    ticket_id: str
    produce_id: str
    expires_at: dt.datetime
    label_notice: str
    verdicts: dict[str, Any]


@dataclass(frozen=True)
class Completed:
    produce_id: str
    output: str | None
    labels: dict[str, Any]
    verdicts: dict[str, Any]
    generation_id: str
    media: list[MediaItem] = field(default_factory=list)
    """The delivered files, with their labels."""


def _emit_stage_events(session: Session, ctx: GenerationContext) -> None:
    # One multi-row INSERT for the phase's stage events instead of an ORM object each: this runs
    # on every request, and the ORM unit of work was a visible share of the c=1 tail.
    actor = f"service:{ctx.service.slug}"
    audit.record_many(
        session,
        [
            {
                "event_type": f"pipeline.{stage}",
                "actor": actor,
                "service_id": ctx.service.id,
                "subject_type": "produce_id",
                "subject_id": ctx.produce_id,
                "data": {"mode": ctx.mode, **data},
            }
            for stage, data in ctx.events
        ],
    )
    ctx.events.clear()


class GatewayService:
    """One per process; safe to share between threads (each call opens its own sessions)."""

    def __init__(
        self, settings: Settings, db: Database, keys: KeyStore, pipeline: list[Stage] | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.keys = keys
        self.pipeline = pipeline if pipeline is not None else build_stages(settings.stages)

    # --- shared -------------------------------------------------------------------------------

    def _context(
        self,
        service: Service,
        user: str,
        input_text: str,
        *,
        mode: Literal["two_phase", "proxy"],
        model: str | None,
        medium: str = "text",
        operation: str = "generate",
        media: Sequence[MediaItem] = (),
    ) -> GenerationContext:
        if not isinstance(user, str) or not user.strip():
            raise InvalidInput("the end user must be named (field 'user')", field="user")
        if len(input_text) > self.settings.max_input_chars:
            raise InvalidInput(
                f"input is longer than {self.settings.max_input_chars} characters", field="input"
            )
        self._check_media_count(media, "media")
        return GenerationContext(
            settings=self.settings,
            keys=self.keys,
            service=service,
            external_user=user,
            mode=mode,
            input_text=input_text,
            medium=medium,
            model=model,
            operation=operation,
            input_media=list(media),
        )

    def _check_media_count(self, media: Sequence[MediaItem], field_name: str) -> None:
        if len(media) > self.settings.max_media_items:
            raise InvalidInput(
                f"at most {self.settings.max_media_items} files per request; got {len(media)}",
                field=field_name,
            )

    def _guarded(self, ctx: GenerationContext, phase: str, work: Callable[[Session], None]) -> None:
        """Run ``work`` in one transaction; refusals and faults are recorded in a fresh one."""
        try:
            with self.db.session() as session:
                work(session)
        except Refused as refusal:
            self._record_refusal(ctx, refusal)
            raise
        except SynthgateError:
            raise
        except Exception as exc:
            stage = ctx.current_stage or phase
            log.exception("pipeline.failed", phase=phase, produce_id=ctx.produce_id)
            with self.db.session() as session:
                audit.record(
                    session,
                    "pipeline.failed",
                    actor="system",
                    service_id=ctx.service.id,
                    subject_type="produce_id",
                    subject_id=ctx.produce_id,
                    data={"phase": phase, "stage": stage, "error": type(exc).__name__},
                )
            raise PipelineFailure(
                f"internal fault during {phase}; nothing was generated or recorded (produce id "
                f"{ctx.produce_id})"
            ) from exc

    def _record_refusal(self, ctx: GenerationContext, refusal: Refused) -> None:
        metrics.REFUSALS.labels(service=ctx.service.slug, reason=refusal.reason).inc()
        with self.db.session() as session:
            if refusal.reason == "moderation.held":
                # DSP-10 human review: the held content waits, sealed, in the reviewers' queue; the
                # provider hears the decision through its callback.
                item = review.hold_for_context(session, self.keys, ctx, refusal.stage)
                refusal.details["review_id"] = item.id
            session.add(
                Refusal(
                    service_id=ctx.service.id,
                    account_id=ctx.account_id,
                    stage=refusal.stage,
                    reason=refusal.reason,
                    clause=refusal.clause,
                    message=refusal.message,
                )
            )
            _emit_stage_events(session, ctx)
            audit.record(
                session,
                "pipeline.refused",
                actor=f"service:{ctx.service.slug}",
                service_id=ctx.service.id,
                subject_type="produce_id",
                subject_id=ctx.produce_id,
                data={
                    "mode": ctx.mode,
                    "stage": refusal.stage,
                    "reason": refusal.reason,
                    "clause": refusal.clause,
                    "account": ctx.account_id,
                },
            )

    # --- two-phase ----------------------------------------------------------------------------

    def check(
        self,
        service: Service,
        user: str,
        input_text: str,
        *,
        model: str | None = None,
        medium: str = "text",
        operation: str = "generate",
        media: Sequence[MediaItem] = (),
        without_explicit_label: bool = False,
    ) -> CheckResult:
        ctx = self._context(
            service,
            user,
            input_text,
            mode="two_phase",
            model=model,
            medium=medium,
            operation=operation,
            media=media,
        )
        ctx.explicit_label_waived = without_explicit_label
        holder: dict[str, Ticket] = {}

        def work(session: Session) -> None:
            if without_explicit_label and service.settings.get("unlabeled_delivery") is not True:
                raise Refused(
                    "labeling.waiver_not_allowed",
                    "LM-9",
                    "this service's agreement does not put the labeling duty on its users, so the "
                    "explicit label cannot be left off",
                    stage="check",
                )
            run_phase(self.pipeline, "check", ctx, session)
            assert ctx.account is not None
            now = utcnow()
            ticket = Ticket(
                service_id=service.id,
                account_id=ctx.account.id,
                produce_id=ctx.produce_id,
                medium=medium,
                operation=operation,
                model=model,
                input_sha256=ctx.input_sha256,
                input_chars=len(input_text),
                input_media=ctx.input_media_digests(),
                explicit_label_waived=without_explicit_label,
                verdicts=ctx.verdicts,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=self.settings.ticket_ttl_seconds),
            )
            session.add(ticket)
            session.flush()
            ctx.note("ticket", ticket=ticket.id)
            _emit_stage_events(session, ctx)
            holder["ticket"] = ticket

        self._guarded(ctx, "check", work)
        ticket = holder["ticket"]
        return CheckResult(
            ticket_id=ticket.id,
            produce_id=ticket.produce_id,
            expires_at=ticket.expires_at,
            label_notice=text_label_for(ctx).text,
            verdicts=ctx.verdicts,
        )

    def complete(
        self,
        service: Service,
        ticket_id: str,
        output_text: str | None,
        *,
        media: Sequence[MediaItem] = (),
    ) -> Completed:
        if output_text is not None and not isinstance(output_text, str):
            raise InvalidInput("output must be a string", field="output")
        if output_text is None and not media:
            raise InvalidInput("give the output text, the output files or both", field="output")
        if output_text is not None and len(output_text) > self.settings.max_input_chars:
            raise InvalidInput(
                f"output is longer than {self.settings.max_input_chars} characters", field="output"
            )
        self._check_media_count(media, "media")
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None or ticket.service_id != service.id:
                raise NotFound(f"no ticket {ticket_id!r} for this service")
            if ticket.completed_at is not None:
                raise Conflict("this ticket was completed already")
            if ticket.expires_at <= utcnow():
                raise Conflict("this ticket has expired; check the input again")
            account = session.get(Account, ticket.account_id)
            assert account is not None
            session.expunge(account)
        ctx = GenerationContext(
            settings=self.settings,
            keys=self.keys,
            service=service,
            external_user=account.external_id,
            mode="two_phase",
            input_text="",
            medium=ticket.medium,
            model=ticket.model,
            operation=ticket.operation,
            produce_id=ticket.produce_id,
            account=account,
            account_id=account.id,
            output_text=output_text,
            output_media=list(media),
            explicit_label_waived=ticket.explicit_label_waived,
            verdicts=dict(ticket.verdicts),
        )
        input_sha256 = ticket.input_sha256
        input_chars = ticket.input_chars
        input_media = list(ticket.input_media or [])

        def work(session: Session) -> None:
            claimed = session.get(Ticket, ticket_id, with_for_update=True)
            assert claimed is not None
            if claimed.completed_at is not None:
                raise Conflict("this ticket was completed already")
            claimed.completed_at = utcnow()
            run_phase(self.pipeline, "complete", ctx, session)
            if ctx.generation is not None:
                ctx.generation.input_sha256 = input_sha256
                ctx.generation.input_chars = input_chars
                ctx.generation.input_media = input_media
            _emit_stage_events(session, ctx)

        try:
            self._guarded(ctx, "complete", work)
        except Refused:
            self._close_ticket(ticket_id)
            raise
        return self._completed(ctx)

    def _close_ticket(self, ticket_id: str) -> None:
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None and ticket.completed_at is None:
                ticket.completed_at = utcnow()

    def _completed(self, ctx: GenerationContext) -> Completed:
        assert ctx.generation is not None, "the pipeline has no record stage"
        metrics.GENERATIONS.labels(service=ctx.service.slug, mode=ctx.mode).inc()
        output = ctx.labeled_output if ctx.labeled_output is not None else ctx.output_text
        return Completed(
            produce_id=ctx.produce_id,
            output=output,
            labels=ctx.labels,
            verdicts=ctx.verdicts,
            generation_id=ctx.generation.id,
            media=list(ctx.delivered_media),
        )

    # --- proxy (inline) -----------------------------------------------------------------------

    def proxy_check(
        self,
        service: Service,
        user: str,
        input_text: str,
        *,
        model: str | None,
        medium: str = "text",
        operation: str = "generate",
    ) -> GenerationContext:
        """The check phase without a ticket: its events are written with the generation."""
        ctx = self._context(
            service, user, input_text, mode="proxy", model=model, medium=medium, operation=operation
        )

        def work(session: Session) -> None:
            if self.db.engine.dialect.name == "postgresql":
                # The proxy's check phase only reads (its events are written with the generation,
                # a refusal in a fresh transaction): statements in autocommit mode spare the BEGIN
                # and COMMIT round trips, two of the nine a proxied request makes.
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            run_phase(self.pipeline, "check", ctx, session)
            if session.new or session.dirty or session.deleted:
                raise RuntimeError(
                    "a check-phase stage changed rows in proxy mode, where the check only reads"
                )
            if ctx.account is not None:
                session.expunge(ctx.account)

        self._guarded(ctx, "check", work)
        return ctx

    def proxy_complete(
        self, ctx: GenerationContext, output_text: str | None, media: Sequence[MediaItem] = ()
    ) -> Completed:
        ctx.output_text = output_text
        ctx.output_media = list(media)

        def work(session: Session) -> None:
            run_phase(self.pipeline, "complete", ctx, session)
            _emit_stage_events(session, ctx)

        self._guarded(ctx, "complete", work)
        return self._completed(ctx)

    def refuse(self, ctx: GenerationContext, refusal: Refused) -> None:
        """Record a refusal decided outside the stages (e.g. mid-stream output screening)."""
        self._record_refusal(ctx, refusal)

    def generation(self, session: Session, produce_id: str) -> Generation | None:
        from sqlalchemy import select

        return session.scalar(select(Generation).where(Generation.produce_id == produce_id))


def refusal_counts(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Refusals in [start, end) by reason code (read only; transparency figures)."""
    from sqlalchemy import func, select

    rows = session.execute(
        select(Refusal.reason, func.count())
        .where(Refusal.created_at >= start, Refusal.created_at < end)
        .group_by(Refusal.reason)
    ).all()
    return {str(reason): int(count) for reason, count in rows}
