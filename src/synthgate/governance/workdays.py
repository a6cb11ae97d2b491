"""Working days on the mainland-China calendar, for every deadline the law counts in working days.

DSP-19 gives 10 working days to file a change and 20 to cancel a filing; the published complaint
process (DSP-12) counts its deadlines the same way. Public holidays and the weekend days worked in
lieu (调休) come from the maintained ``chinese-calendar`` package. Its data stops at the last year
the State Council has announced; past that a day counts as a working day when it is Monday to
Friday and not a fixed-date statutory holiday (the best guess until the next notice), and
``covered`` says so, so callers can show the
deadline as provisional. Operators can add holidays or worked days of their own (a local holiday,
a notice the package has not caught up with).

Days are counted in China Standard Time (UTC+8, no daylight saving): an event late on a UTC day
may already fall on the next day in Beijing, and a deadline ends at midnight Beijing time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import chinese_calendar

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
STATUTORY_FIXED_HOLIDAYS = frozenset({(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)})
"""Holidays on fixed solar dates by law (New Year, Labour Day, National Day; 2025 revision): kept
even past the package's data. The lunar holidays and the in-lieu swaps are only known from notices."""


class WorkCalendar:
    def __init__(
        self, extra_holidays: Iterable[dt.date] = (), extra_workdays: Iterable[dt.date] = ()
    ) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        overlap = self.extra_holidays & self.extra_workdays
        if overlap:
            raise ValueError(f"days both holiday and working day: {sorted(overlap)}")

    def covered(self, day: dt.date) -> bool:
        """Whether the official holiday data covers this day (otherwise weekdays are assumed)."""
        try:
            chinese_calendar.is_workday(day)
        except NotImplementedError:
            return day in self.extra_holidays or day in self.extra_workdays
        return True

    def is_workday(self, day: dt.date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5 and (day.month, day.day) not in STATUTORY_FIXED_HOLIDAYS

    def add_workdays(self, start: dt.date, count: int) -> dt.date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        day = start
        remaining = count
        while remaining:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                remaining -= 1
        return day

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative when ``end`` is earlier)."""
        if end < start:
            return -self.workdays_between(end, start)
        return sum(
            1 for n in range(1, (end - start).days + 1) if self.is_workday(start + dt.timedelta(days=n))
        )

    def due_after(self, moment: dt.datetime, count: int) -> dt.datetime:
        """The end (midnight Beijing time, as UTC) of the ``count``-th working day after ``moment``."""
        local_day = china_date(moment)
        last = self.add_workdays(local_day, count)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=CHINA_TZ)
        return end.astimezone(dt.UTC)

    def workdays_left(self, now: dt.datetime, due: dt.datetime) -> int:
        """Working days from today (Beijing) to the due day; 0 on the last day, negative once overdue."""
        due_day = china_date(due - dt.timedelta(microseconds=1))
        return self.workdays_between(china_date(now), due_day)


def china_date(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # the database keeps naive UTC on SQLite
    return moment.astimezone(CHINA_TZ).date()


DEFAULT_CALENDAR = WorkCalendar()


def calendar_for(settings: object) -> WorkCalendar:
    """The deployment's calendar: the official one plus its configured extra holidays and workdays."""
    return WorkCalendar(
        getattr(settings, "workday_extra_holidays", ()) or (),
        getattr(settings, "workday_extra_workdays", ()) or (),
    )
