"""``synthgate transparency export`` and ``synthgate filings due / remind``.

The helpers of ``synthgate.cli`` are imported inside the commands: that module registers these.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

transparency_app = typer.Typer(
    help="Transparency figures per period: generations, refusals, reviews, sanctions, complaints, "
    "takedowns, appeals, authority reports, filings.",
    no_args_is_help=True,
)
filings_app = typer.Typer(help="Algorithm filings (DSP-19): deadlines and reminders.", no_args_is_help=True)
FORMATS = ("csv", "json", "pdf")


def _day(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} is a date, YYYY-MM-DD") from exc


@transparency_app.command("export")
def export(
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC); default 30 days ago")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC), inclusive; default today")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, json or pdf; default from the output name")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write; default stdout (not PDF)")
    ] = None,
) -> None:
    """Write the period's transparency figures as CSV, JSON or PDF (audited as an export)."""
    from synthgate.audit import service as audit
    from synthgate.cli import _actor, _gateway, _run, err
    from synthgate.governance import transparency

    chosen = fmt or (output.suffix.lower().lstrip(".") if output is not None else "json")
    if chosen not in FORMATS:
        raise typer.BadParameter(f"format must be one of {', '.join(FORMATS)}", param_hint="--format")
    if chosen == "pdf" and output is None:
        raise typer.BadParameter("a PDF needs an output file", param_hint="-o")
    _day(start, "--from")
    _day(end, "--to")
    gateway = _gateway()

    def work() -> bytes:
        first, last = transparency.parse_period(start, end)
        with gateway.db.session() as session:
            figures = transparency.compute(session, first, last)
            data, _ = transparency.render(figures, chosen)
            audit.record(
                session,
                "transparency.exported",
                actor=_actor(),
                subject_type="transparency",
                subject_id=f"{first.isoformat()}..{last.isoformat()}",
                data={"format": chosen, "start": first.isoformat(), "end": last.isoformat()},
            )
        return data

    try:
        data = _run(work)
    finally:
        gateway.close()
    if output is None:
        sys.stdout.buffer.write(data)
        return
    output.write_bytes(data)
    err.print(f"wrote {output} ({len(data)} bytes)")


@filings_app.command("due")
def due(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Open filings (launch, change, cancellation) with their deadlines in working days."""
    from rich.table import Table

    from synthgate.cli import _gateway, _print_json, out
    from synthgate.governance import service as governance
    from synthgate.governance.workdays import calendar_for

    gateway = _gateway()
    try:
        with gateway.db.session() as session:
            rows = [
                {
                    "algorithm": r.algorithm_name,
                    "kind": r.obligation.kind,
                    "description": r.obligation.description,
                    "due_at": r.obligation.due_at.isoformat(),
                    "workdays_left": r.workdays_left,
                    "provisional": r.obligation.due_provisional,
                }
                for r in governance.due_filings(session, calendar=calendar_for(gateway.settings))
            ]
    finally:
        gateway.close()
    if as_json:
        _print_json(rows)
        return
    table = Table("algorithm", "kind", "due (UTC)", "working days left", "what")
    for row in rows:
        table.add_row(
            str(row["algorithm"]),
            str(row["kind"]),
            str(row["due_at"]),
            str(row["workdays_left"]),
            str(row["description"]),
        )
    out.print(table)


@filings_app.command("remind")
def remind() -> None:
    """Audit reminders for filings close to their deadline or overdue (the scheduler runs this too)."""
    from synthgate.cli import _gateway, out
    from synthgate.governance import service as governance
    from synthgate.governance.workdays import calendar_for

    gateway = _gateway()
    try:
        with gateway.db.session() as session:
            sent = governance.send_filing_reminders(session, calendar=calendar_for(gateway.settings))
    finally:
        gateway.close()
    for reminder in sent:
        state = "overdue" if reminder.overdue else f"{reminder.workdays_left} working days left"
        out.print(f"{reminder.algorithm_name}: {reminder.obligation.kind} filing {state}")
    out.print(f"{len(sent)} reminder(s)")
