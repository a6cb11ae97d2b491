"""Policy: what a service does with findings (category × score × stage × medium → action).

A policy document is a list of rules read top to bottom; the first rule that covers a finding
decides it, ``default_action`` decides findings no rule covers. The verdict takes the strongest
action over all findings (block > review > flag > allow) and records everything a statement of
reasons needs: policy name and version, detector versions, each finding with its evidence and
the action it drew, and that the decision was automated.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthgate.moderation.findings import Finding

Action = Literal["allow", "flag", "review", "block"]
Stage = Literal["input", "output"]
RANK: dict[str, int] = {"allow": 0, "flag": 1, "review": 2, "block": 3}
MAX_FINDINGS_RECORDED = 50

# TC-A (the 31 risks of the assessment standard's annex A): codes used as categories.
TC_A_CATEGORIES: dict[str, str] = {
    "A.1.1": "subversion of state power / socialist system",
    "A.1.2": "endangering national security, unity, separatism",
    "A.1.3": "terrorism, extremism",
    "A.1.4": "ethnic hatred, discrimination",
    "A.1.5": "violence",
    "A.1.6": "obscenity, pornography",
    "A.1.7": "false harmful information",
    "A.1.8": "other content prohibited by law",
    "A.2.1": "discrimination: ethnicity",
    "A.2.2": "discrimination: belief",
    "A.2.3": "discrimination: nationality",
    "A.2.4": "discrimination: region",
    "A.2.5": "discrimination: sex",
    "A.2.6": "discrimination: age",
    "A.2.7": "discrimination: occupation",
    "A.2.8": "discrimination: health",
    "A.2.9": "discrimination: other",
    "A.3.1": "infringing intellectual property",
    "A.3.2": "violating business ethics",
    "A.3.3": "leaking trade secrets",
    "A.3.4": "monopoly, unfair competition",
    "A.3.5": "other commercial violations",
    "A.4.1": "harming physical or mental health",
    "A.4.2": "infringing portrait rights",
    "A.4.3": "infringing reputation rights",
    "A.4.4": "infringing honour rights",
    "A.4.5": "infringing privacy",
    "A.4.6": "infringing personal information rights",
    "A.4.7": "infringing other lawful rights",
    "A.5.1": "inaccurate content for the service type",
    "A.5.2": "unreliable content for the service type",
}
EXTRA_CATEGORIES: dict[str, str] = {
    "blocked-term": "a term on the deployment's or the service's own block list",
    "prompt-injection": "an attempt to override the model's instructions",
    "undecodable": "media that could not be decoded for screening",
    "detector-error": "a detector failed or timed out (fail-closed)",
    "detector-skipped": "a detector failed or timed out and its setting lets content through (fail-open)",
}
PII_CATEGORY = "A.4.6"


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str = "*"
    """A category code or an fnmatch pattern (``A.1.*``)."""
    stage: Literal["input", "output", "*"] = "*"
    medium: str = "*"
    detector: str = "*"
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    action: Action

    def covers(self, finding: Finding, stage: Stage, medium: str) -> bool:
        return (
            self.stage in ("*", stage)
            and fnmatch.fnmatchcase(medium, self.medium)
            and fnmatch.fnmatchcase(finding.detector, self.detector)
            and fnmatch.fnmatchcase(finding.category, self.category)
            and finding.score >= self.min_score
        )


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    rules: list[PolicyRule] = Field(default_factory=list)
    default_action: Action = "block"
    review_sla_minutes: int = Field(default=240, ge=1, le=60 * 24 * 30)
    """How long a held item may wait for a human decision before it shows as overdue."""
    review_priority: dict[str, int] = Field(default_factory=dict)
    """Queue priority (1 most urgent … 5) per category pattern; unlisted categories get 3."""

    def priority_for(self, category: str) -> int:
        for pattern, priority in self.review_priority.items():
            if fnmatch.fnmatchcase(category, pattern):
                return max(1, min(5, int(priority)))
        return 3

    def action_for(self, finding: Finding, stage: Stage, medium: str) -> Action:
        for rule in self.rules:
            if rule.covers(finding, stage, medium):
                return rule.action
        return self.default_action


DEFAULT_POLICY = PolicyDocument(
    name="default",
    rules=[
        # Personal information in a prompt is the user's own business; in an output it is held.
        PolicyRule(category=PII_CATEGORY, stage="input", action="flag"),
        PolicyRule(category=PII_CATEGORY, stage="output", action="review"),
        PolicyRule(category="prompt-injection", action="flag"),
        # Media that cannot be decoded cannot be screened: never delivered unscreened.
        PolicyRule(category="undecodable", action="block"),
        PolicyRule(category="detector-error", action="block"),
        # A fail-open detector that failed lets content through, but never silently.
        PolicyRule(category="detector-skipped", action="flag"),
        PolicyRule(category="A.*", min_score=0.4, action="block"),
        PolicyRule(category="A.*", action="flag"),
    ],
    default_action="block",
    review_priority={"A.1.*": 1, "A.4.6": 2},
)


@dataclass
class Verdict:
    action: Action
    stage: Stage
    medium: str
    policy: str
    policy_version: str
    detectors: dict[str, str]
    findings: list[tuple[Finding, Action]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    automated: bool = True

    @property
    def decisive(self) -> Finding | None:
        """The first finding that drew the verdict's action (what a refusal points at)."""
        for finding, action in self.findings:
            if action == self.action:
                return finding
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "automated": self.automated,
            "stage": self.stage,
            "medium": self.medium,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "detectors": dict(self.detectors),
            "findings": [{**f.as_dict(), "action": a} for f, a in self.findings[:MAX_FINDINGS_RECORDED]],
            "findings_total": len(self.findings),
            "notes": list(self.notes),
        }


def decide(
    document: PolicyDocument,
    policy_version: str,
    findings: list[Finding],
    *,
    stage: Stage,
    medium: str,
    detectors: dict[str, str],
    notes: list[str] | None = None,
) -> Verdict:
    decided = [(f, document.action_for(f, stage, medium)) for f in findings]
    # Strongest action first, then by position, so ``decisive`` is the earliest blocking match.
    decided.sort(key=lambda fa: (-RANK[fa[1]], (fa[0].span or (0, 0))[0]))
    action: Action = max((a for _, a in decided), key=RANK.__getitem__, default="allow")
    return Verdict(
        action=action,
        stage=stage,
        medium=medium,
        policy=document.name,
        policy_version=policy_version,
        detectors=detectors,
        findings=decided,
        notes=notes or [],
    )
