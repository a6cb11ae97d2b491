"""``synthgate library …`` (the feature library's procedure) and ``synthgate screen``.

The helpers of ``synthgate.cli`` are imported inside the commands: that module registers these.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

library_app = typer.Typer(
    help="The feature library (DSP-10, TC-8.1): import, approve, publish, export.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ActorOpt = Annotated[str | None, typer.Option(help="Who acts (default: cli:<user>)")]


def _fmt(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("csv", "json"):
        raise typer.BadParameter("library files end in .csv or .json")
    return suffix


@library_app.command("import")
def library_import(
    file: Annotated[Path, typer.Argument(help="A .csv or .json library file", exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="Source recorded for rows that name none")] = "",
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose every entry of FILE (they still need approval by someone else, then publishing)."""
    from synthgate.cli import _actor, _gateway, _print_json, _run, out
    from synthgate.moderation import service as library

    fmt = _fmt(file)
    gateway = _gateway()

    def run() -> dict[str, Any]:
        with gateway.db.session() as session:
            entries = library.import_file(
                session, file.read_bytes(), fmt, actor=actor or _actor(), source=source or file.name
            )
            return {"proposed": len(entries), "status": "pending"}

    result = _run(run)
    if as_json:
        _print_json(result)
    else:
        out.print(f"{result['proposed']} entries proposed; approve them, then publish a version")


@library_app.command("approve")
def library_approve(
    entry: Annotated[
        list[str] | None, typer.Argument(help="Entry ids (default: every pending entry)")
    ] = None,
    reject: Annotated[bool, typer.Option(help="Reject instead of approving")] = False,
    note: Annotated[str, typer.Option(help="Why")] = "",
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve (or reject) pending entries; the approver must not be who admitted them."""
    from synthgate.cli import _actor, _gateway, _print_json, _run, out
    from synthgate.moderation import service as library

    gateway = _gateway()

    def run() -> dict[str, Any]:
        with gateway.db.session() as session:
            ids = entry or library.pending_ids(session)
            decided = library.decide(session, ids, approve=not reject, actor=actor or _actor(), note=note)
            return {"decided": len(decided), "status": "rejected" if reject else "approved"}

    result = _run(run)
    if as_json:
        _print_json(result)
    else:
        out.print(f"{result['decided']} entries {result['status']}")


@library_app.command("publish")
def library_publish(
    note: Annotated[str, typer.Option(help="What changed")] = "",
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish approved changes as a new version; every worker picks it up within a second."""
    from synthgate.cli import _actor, _gateway, _print_json, _run, out
    from synthgate.moderation import service as library

    gateway = _gateway()

    def run() -> dict[str, Any]:
        with gateway.db.session() as session:
            row = library.publish(session, actor=actor or _actor(), note=note)
            return {
                "version": row.version,
                "entries": row.entries,
                "added": row.added,
                "retired": row.retired,
            }

    result = _run(run)
    if as_json:
        _print_json(result)
    else:
        out.print(
            f"library version {result['version']} published: {result['entries']} entries "
            f"(+{result['added']}, -{result['retired']})"
        )


@library_app.command("export")
def library_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="A .csv or .json file to write")],
    all_entries: Annotated[
        bool, typer.Option("--all", help="Include pending, rejected and retired entries")
    ] = False,
) -> None:
    """Write the library with every entry's admission record (CSV or JSON by extension)."""
    from synthgate.cli import _gateway, _run, out
    from synthgate.moderation import service as library

    fmt = _fmt(output)
    gateway = _gateway()

    def run() -> int:
        with gateway.db.session() as session:
            rows = library.export_rows(session, include_inactive=all_entries)
            output.write_bytes(library.render_export(rows, fmt, version=library.current_version(session)))
            return len(rows)

    count = _run(run)
    out.print(f"{count} entries written to {output}")


def screen(
    text: Annotated[str | None, typer.Option(help="Text to screen")] = None,
    file: Annotated[
        Path | None, typer.Option(help="A UTF-8 text file to screen", exists=True, dir_okay=False)
    ] = None,
    stage: Annotated[str, typer.Option(help="input or output")] = "input",
    service: Annotated[str | None, typer.Option(help="Screen under this service's terms and policy")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Screen a text with the published library, PII and injection detectors and the policy."""
    from synthgate.cli import _gateway, _print_json, _run, err, out
    from synthgate.errors import InvalidInput, NotFound
    from synthgate.governance.models import Service
    from synthgate.moderation import service as library
    from synthgate.moderation.screener import Moderation, build_screener, library_cache

    if (text is None) == (file is None):
        raise typer.BadParameter("give exactly one of --text or --file")
    if stage not in ("input", "output"):
        raise typer.BadParameter("--stage is input or output")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            err.print(f"[red]error:[/red] {file} is not UTF-8 text")
            raise typer.Exit(2) from exc
    assert text is not None
    gateway = _gateway()

    def run() -> dict[str, Any]:
        with gateway.db.session() as session:
            svc = None
            if service:
                svc = (
                    session.query(Service).filter((Service.slug == service) | (Service.id == service)).first()
                )
                if svc is None:
                    raise NotFound(f"no service {service}")
            terms = list(gateway.settings.blocked_terms) + list(
                svc.settings.get("blocked_terms", []) if svc else []
            )
            policy, version = library.policy_for(session, svc)
            moderation = Moderation(build_screener(library_cache.get(session), terms), policy, version)
            if len(text) > 10_000_000:
                raise InvalidInput("text longer than 10,000,000 characters")
            return moderation.verdict(text, "input" if stage == "input" else "output").as_dict()

    verdict = _run(run)
    if as_json:
        _print_json(verdict)
    else:
        out.print(f"action: [bold]{verdict['action']}[/bold] (policy {verdict['policy_version']})")
        for f in verdict["findings"]:
            out.print(
                f"  {f['action']:6} {f['category']:16} {f['detector']:16} {f['span']} {f['evidence']!r}"
            )
    if verdict["action"] in ("block", "review"):
        sys.exit(1)


def eval_bank(
    bank: Annotated[
        Path | None,
        typer.Argument(help="A JSONL question bank (default: the small packaged example)", dir_okay=False),
    ] = None,
    endpoint: Annotated[
        str,
        typer.Option(help="The model's OpenAI-compatible base URL (…/v1)", envvar="SYNTHGATE_EVAL_ENDPOINT"),
    ] = "",
    model: Annotated[str, typer.Option(help="Model name sent to the endpoint")] = "",
    api_key: Annotated[
        str, typer.Option(help="Bearer key for the endpoint", envvar="SYNTHGATE_EVAL_API_KEY")
    ] = "",
    service: Annotated[
        str | None, typer.Option(help="Screen under this service's detectors and policy")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the report as .json or .csv")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 unless the TC-9 thresholds and sample sizes are met")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a question bank through the model and the gateway's screening; report TC-9 rates per risk."""
    from importlib.resources import files

    from synthgate.cli import _gateway, _print_json, _run, out
    from synthgate.errors import InvalidInput, NotFound
    from synthgate.governance.models import Service
    from synthgate.moderation.evaluation import THRESHOLDS, parse_bank, run_bank, summarise
    from synthgate.moderation.screener import build_moderation

    if not endpoint.startswith(("http://", "https://")):
        raise typer.BadParameter("--endpoint is the model's http(s) base URL, e.g. http://127.0.0.1:8901/v1")
    if output is not None and output.suffix.lower() not in (".json", ".csv"):
        raise typer.BadParameter("the report file ends in .json or .csv")
    if bank is not None and not bank.is_file():
        raise typer.BadParameter(f"{bank} is not a file")
    data = (
        bank.read_bytes()
        if bank is not None
        else files("synthgate.moderation").joinpath("eval_example.jsonl").read_bytes()
    )
    gateway = _gateway()

    def run() -> Any:
        questions = parse_bank(data)
        with gateway.db.session() as session:
            svc = None
            if service:
                svc = (
                    session.query(Service).filter((Service.slug == service) | (Service.id == service)).first()
                )
                if svc is None:
                    raise NotFound(f"no service {service}")
            moderation = build_moderation(session, svc, gateway.settings.blocked_terms)

        def screen(text: str, stage: str, prompt: str) -> str:
            return moderation.verdict(text, "input" if stage == "input" else "output", prompt=prompt).action

        try:
            return summarise(
                run_bank(questions, screen=screen, endpoint=endpoint, model=model, api_key=api_key)
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

    report = _run(run)
    if output is not None:
        if output.suffix.lower() == ".json":
            output.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            output.write_text(report.to_csv(), encoding="utf-8")
    if as_json:
        _print_json(report.as_dict())
    else:
        from rich.table import Table

        def pct(value: float | None) -> str:
            return "—" if value is None else f"{value:.1%}"

        table = Table(title="TC-9 assessment run")
        for column in ("category", "refusal rate", "false refusals", "pass rate", "questions", "errors"):
            table.add_column(column)
        for row in [*report.rows, report.overall]:
            total = row.should_refuse + row.should_answer + row.generated
            table.add_row(
                row.category,
                pct(row.refusal_rate),
                pct(row.false_refusal_rate),
                pct(row.pass_rate),
                str(total),
                str(row.errors),
            )
        out.print(table)
        out.print(
            f"thresholds: refusal ≥ {THRESHOLDS['refusal_rate']:.0%}, false refusals ≤ "
            f"{THRESHOLDS['false_refusal_rate']:.0%}, generated pass ≥ {THRESHOLDS['pass_rate']:.0%}"
        )
        for note in report.sample_notes:
            out.print(f"[yellow]note:[/yellow] {note}")
        out.print("meets TC-9: " + ("[green]yes[/green]" if report.passed else "[red]no[/red]"))
        if output is not None:
            out.print(f"report written to {output}")
    if strict and not report.passed:
        raise typer.Exit(1)
