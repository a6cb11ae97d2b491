"""The governance gate: a pipeline stage that refuses what governance has not cleared.

- ``governance.suspended``: the service, or the feature asked for, is under an emergency suspension.
- ``governance.unassessed`` (DSP-15): a biometric-editing operation, or a model version flagged as
  generating or editing biometric data, without a passed, current security assessment of that version.
- ``governance.unassessed`` (DSP-20): a public-facing function of the service without a passed,
  current security assessment.

What it needs (suspensions, versions, functions, passed assessments) is small and read on every
request, so each worker keeps one snapshot in memory. The newest ``governance_changes`` id is read
at most once a second (one indexed query); a change made in this process is seen at once. An
emergency suspension therefore reaches every worker within about a second, without restarts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from synthgate.db import utcnow
from synthgate.errors import Refused
from synthgate.governance import service as governance
from synthgate.governance.models import (
    AlgorithmVersion,
    Assessment,
    GovernanceChange,
    ServiceFunction,
    Suspension,
)

if TYPE_CHECKING:
    from synthgate.gateway.pipeline import GenerationContext

RECHECK_SECONDS = 1.0
BIOMETRIC_PREFIXES = ("face.", "voice.", "body.", "pose.", "gait.", "iris.", "fingerprint.", "biometric.")
"""Operations that generate or edit biometric data; services may name more (``biometric_operations``)."""


@dataclass(frozen=True)
class Pass:
    assessment_id: str
    valid_until: dt.datetime | None

    def current(self, now: dt.datetime) -> bool:
        return self.valid_until is None or self.valid_until > now


@dataclass(frozen=True)
class VersionInfo:
    id: str
    version: str
    models: tuple[str, ...]
    biometric: bool
    passes: tuple[Pass, ...]


@dataclass(frozen=True)
class FunctionInfo:
    id: str
    public_facing: bool
    passes: tuple[Pass, ...]


@dataclass(frozen=True)
class SuspensionInfo:
    id: str
    feature: str | None
    until: dt.datetime | None
    reason: str
    clause: str


@dataclass(frozen=True)
class Snapshot:
    suspensions: dict[str, tuple[SuspensionInfo, ...]] = field(default_factory=dict)
    versions: dict[str, tuple[VersionInfo, ...]] = field(default_factory=dict)
    """Per algorithm, oldest first."""
    functions: dict[tuple[str, str], FunctionInfo] = field(default_factory=dict)


def _first_current(passes: tuple[Pass, ...], now: dt.datetime) -> Pass | None:
    return next((p for p in passes if p.current(now)), None)


def build_snapshot(session: Session) -> Snapshot:
    passes: dict[tuple[str, str], list[Pass]] = defaultdict(list)
    for assessment in session.execute(
        select(
            Assessment.id, Assessment.algorithm_version_id, Assessment.function_id, Assessment.valid_until
        ).where(Assessment.kind == "security", Assessment.result == "passed")
    ):
        target = ("version", assessment[1]) if assessment[1] else ("function", assessment[2] or "")
        passes[target].append(Pass(assessment[0], assessment[3]))
    versions: dict[str, list[VersionInfo]] = defaultdict(list)
    for version in session.scalars(select(AlgorithmVersion).order_by(AlgorithmVersion.created_at)):
        versions[version.algorithm_id].append(
            VersionInfo(
                id=version.id,
                version=version.version,
                models=tuple(version.models),
                biometric=version.biometric,
                passes=tuple(passes[("version", version.id)]),
            )
        )
    functions = {
        (f.service_id, f.operation): FunctionInfo(f.id, f.public_facing, tuple(passes[("function", f.id)]))
        for f in session.scalars(select(ServiceFunction))
    }
    suspensions: dict[str, list[SuspensionInfo]] = defaultdict(list)
    for s in session.scalars(select(Suspension).where(Suspension.lifted_at.is_(None))):
        suspensions[s.service_id].append(SuspensionInfo(s.id, s.feature, s.until, s.reason, s.clause))
    return Snapshot(
        suspensions={k: tuple(v) for k, v in suspensions.items()},
        versions={k: tuple(v) for k, v in versions.items()},
        functions=functions,
    )


class GateCache:
    """One snapshot per worker, keyed by database and newest change; rechecked at most once a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[tuple[str, int, str], Snapshot] | None = None
        self._checked: tuple[str, int, float] | None = None

    def get(self, session: Session) -> Snapshot:
        url = str(session.get_bind().engine.url)
        checked, current = self._checked, self._current
        if (
            checked is not None
            and current is not None
            and checked[0] == url == current[0][0]
            and checked[1] == governance.changes_in_process()
            and time.monotonic() - checked[2] < RECHECK_SECONDS
        ):
            return current[1]
        # Taken before the query: a change committed meanwhile makes the next request look again.
        stamp = (url, governance.changes_in_process(), time.monotonic())
        row = session.execute(
            select(GovernanceChange.id, GovernanceChange.created_at)
            .order_by(GovernanceChange.id.desc())
            .limit(1)
        ).first()
        # The change time tells apart two databases (tests, tenants) that reached the same id.
        key = (url, row[0] if row else 0, str(row[1]) if row else "")
        if current is None or current[0] != key:
            snapshot = build_snapshot(session)
            with self._lock:
                self._current = (key, snapshot)
            current = self._current
        self._checked = stamp
        return current[1]


cache = GateCache()


def is_biometric(operation: str, extra: list[str] | tuple[str, ...] = ()) -> bool:
    return operation.startswith(BIOMETRIC_PREFIXES) or operation in extra


def version_for(snapshot: Snapshot, algorithm_id: str | None, model: str | None) -> VersionInfo | None:
    """The filed version a request's model belongs to; without a model name, the newest version."""
    if not algorithm_id:
        return None
    versions = snapshot.versions.get(algorithm_id, ())
    if model is None:
        return versions[-1] if versions else None
    return next((v for v in reversed(versions) if model in v.models), None)


def _suspension(
    snapshot: Snapshot, service_id: str, operation: str, medium: str, now: dt.datetime
) -> SuspensionInfo | None:
    for suspension in snapshot.suspensions.get(service_id, ()):
        if suspension.until is not None and suspension.until <= now:
            continue
        if suspension.feature in (None, operation, f"medium:{medium}"):
            return suspension
    return None


class GovernanceGateStage:
    """DSP-15 / DSP-20 / emergency suspension, before anything is generated."""

    name = "governance_gate"
    phase: Literal["check", "complete"] = "check"

    def __init__(self, gate_cache: GateCache | None = None) -> None:
        self.cache = gate_cache or cache

    def run(self, ctx: GenerationContext, session: Session) -> None:
        snapshot = self.cache.get(session)
        now = utcnow()
        service = ctx.service
        suspended = _suspension(snapshot, service.id, ctx.operation, ctx.medium, now)
        if suspended is not None:
            what = "this service" if suspended.feature is None else f"the feature {suspended.feature}"
            raise Refused(
                "governance.suspended",
                suspended.clause,
                f"{what} is suspended: {suspended.reason}",
                suspension=suspended.id,
                feature=suspended.feature,
            )
        noted: dict[str, object] = {"operation": ctx.operation}
        version = version_for(snapshot, service.algorithm_id, ctx.model)
        if version is not None:
            noted["version"] = version.version
        extra = service.settings.get("biometric_operations", [])
        if is_biometric(ctx.operation, extra) or (version is not None and version.biometric):
            if version is None:
                raise Refused(
                    "governance.unassessed",
                    "DSP-15",
                    "biometric editing needs a filed model version with a passed security assessment; "
                    f"model {ctx.model or '(none named)'} is not a filed version of this service's algorithm",
                    operation=ctx.operation,
                    model=ctx.model,
                )
            passed = _first_current(version.passes, now)
            if passed is None:
                raise Refused(
                    "governance.unassessed",
                    "DSP-15",
                    f"model version {version.version} generates or edits biometric data and has no passed, "
                    "current security assessment",
                    operation=ctx.operation,
                    version=version.version,
                )
            noted["version_assessment"] = passed.assessment_id
        function = snapshot.functions.get((service.id, ctx.operation))
        if function is not None and function.public_facing:
            passed = _first_current(function.passes, now)
            if passed is None:
                raise Refused(
                    "governance.unassessed",
                    "DSP-20",
                    f"the function {ctx.operation} has public-opinion attributes and no passed, current "
                    "security assessment; it may not go live yet",
                    operation=ctx.operation,
                )
            noted["function_assessment"] = passed.assessment_id
        ctx.note(self.name, **noted)
