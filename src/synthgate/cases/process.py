"""The published complaint process (DSP-12, GAI-15): categories, steps and deadlines, and the
working-day calendar the deadlines are counted on.

The text shown on the form, in every acknowledgement and by ``GET /v1/complaints/process`` comes
from here, so what is published and what the deadline job enforces cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from synthgate.config import Settings
from synthgate.governance.workdays import WorkCalendar, china_date


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    risk: str
    """The TC-A risk code (or a library category) a takedown's hashes are banked under."""


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("rumour", "False or misleading information (rumour)", "A.1.7"),
        Category("illegal", "Illegal or prohibited content", "A.1.8"),
        Category("pornography", "Obscene or pornographic content", "A.1.6"),
        Category("violence", "Violence, terrorism or extremism", "A.1.5"),
        Category("deepfake", "My face or voice was used without my consent", "A.4.2"),
        Category("reputation", "Defames me or harms my reputation", "A.4.3"),
        Category("privacy", "Discloses my private or personal information", "A.4.5"),
        Category("unlabeled", "AI-generated content without its label", "A.1.8"),
        Category("ip", "Infringes intellectual property", "A.3.1"),
        Category("other", "Something else", "A.1.8"),
    )
}

SANCTIONS = ("warned", "restricted", "suspended", "closed")


def calendar(settings: Settings) -> WorkCalendar:
    return WorkCalendar(settings.workday_extra_holidays, settings.workday_extra_workdays)


@dataclass(frozen=True)
class Deadline:
    due_at: dt.datetime
    provisional: bool
    """Some day up to the deadline lies past the official holiday data: weekends (and the fixed
    statutory holidays, and the configured extra holidays) were assumed."""


def deadline(settings: Settings, start: dt.datetime, workdays: int) -> Deadline:
    cal = calendar(settings)
    due = cal.due_after(start, workdays)
    first = china_date(start)
    last = china_date(due - dt.timedelta(microseconds=1))
    days = (last - first).days
    provisional = not all(cal.covered(first + dt.timedelta(days=n)) for n in range(days + 1))
    return Deadline(due, provisional)


def published_process(settings: Settings) -> dict[str, Any]:
    """The handling process as published: what happens, and within how many working days."""
    return {
        "deadline_workdays": settings.complaint_deadline_workdays,
        "appeal_deadline_workdays": settings.appeal_deadline_workdays,
        "calendar": "working days on the mainland-China public-holiday calendar (China Standard Time); "
        "a deadline ends at midnight Beijing time",
        "steps": [
            "We acknowledge every complaint at once with a tracking number and the deadline.",
            "A reviewer checks the complaint and traces the content to the generation and account "
            "behind it (metadata label, watermark, hashes).",
            f"We decide within {settings.complaint_deadline_workdays} working days and give our "
            "reasons on the status page of your tracking number.",
            "Illegal content is taken down and blocked from being generated or uploaded again; false "
            "information is answered with a published refutation; accounts may be warned, restricted, "
            "suspended or closed; serious cases are reported to the authority.",
            "The user affected by a decision may appeal it within "
            f"{settings.appeal_deadline_workdays} working days; a different reviewer decides the appeal.",
        ],
        "categories": {code: c.label for code, c in CATEGORIES.items()},
    }
