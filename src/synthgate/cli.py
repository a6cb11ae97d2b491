"""The command line: ``synthgate --help``."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from synthgate.config import get_settings
from synthgate.errors import SynthgateError

app = typer.Typer(
    help="synthgate — the compliance gateway for generative-AI (deep synthesis) services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
service_app = typer.Typer(
    help="Services: provider code, filing (DSP-19), upstream, screening terms.", no_args_is_help=True
)
key_app = typer.Typer(help="API keys per service (shown once, stored hashed).", no_args_is_help=True)
account_app = typer.Typer(help="End-user accounts (DSP-9) and their status.", no_args_is_help=True)
rules_app = typer.Typer(help="Platform rules and service agreement versions (DSP-8).", no_args_is_help=True)
operator_app = typer.Typer(help="Console operators and their roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
dev_app = typer.Typer(help="Development helpers (a local OpenAI-compatible upstream).", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (service_app, "service"),
    (key_app, "key"),
    (account_app, "account"),
    (rules_app, "rules"),
    (operator_app, "operator"),
    (audit_app, "audit"),
    (dev_app, "dev"),
):
    app.add_typer(sub, name=name)

out = Console(soft_wrap=True)  # long lines (passwords, URLs) must not be broken in logs
err = Console(stderr=True)
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _run(fn: Callable[[], T]) -> T:
    """Turn domain errors into a clear message and exit code 2 instead of a traceback."""
    try:
        return fn()
    except SynthgateError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _gateway() -> Any:
    from synthgate.gateway.sdk import Gateway

    return Gateway(get_settings())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


# --- setup ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from synthgate.db import upgrade

    settings = get_settings()
    upgrade(settings, revision)
    out.print(f"database at [bold]{revision}[/bold]: {_redact(settings.effective_database_url)}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def init(
    admin: Annotated[str, typer.Option(help="Username of the first admin")] = "admin",
) -> None:
    """Migrate the database, create the key store and a first admin (printing its one-time password)."""
    from sqlalchemy import select

    from synthgate.db import upgrade
    from synthgate.operators import service as operators
    from synthgate.operators.models import Operator

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings)
    gateway = _gateway()
    gateway.keys.derive("check")  # creates the master key on first run
    gateway.keys.audit_signing_key  # noqa: B018 - creates the checkpoint key on first run
    with gateway.db.session() as session:
        if session.scalar(select(Operator.id).limit(1)) is None:
            _, password = operators.create_operator(
                session, username=admin, role="admin", actor=_actor(), must_change_password=True
            )
            out.print(f"[bold green]first admin created[/bold green]: user [bold]{admin}[/bold]")
            out.print(f"one-time password: [bold]{password}[/bold]  (you will set your own at first login)")
        else:
            out.print("operators exist already; no admin created")
    out.print(f"data directory: {settings.data_dir}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default SYNTHGATE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SYNTHGATE_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving")] = True,
) -> None:
    """Run the gateway: API at /v1, console at /console, docs at /docs, /healthz, /metrics."""
    import uvicorn

    from synthgate.db import upgrade
    from synthgate.logging import configure_logging

    settings = get_settings()
    configure_logging(settings)
    if migrate:
        upgrade(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    out.print(
        f"synthgate on http://{bind_host}:{bind_port}  console /console  docs /docs  "
        f"health /healthz  metrics /metrics"
    )
    uvicorn.run(
        "synthgate.web.asgi:create",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


# --- services and keys ---------------------------------------------------------------------------


@service_app.command("create")
def service_create(
    slug: Annotated[str, typer.Option(help="Short unique name, e.g. chat")],
    name: Annotated[str, typer.Option(help="Display name")],
    provider_code: Annotated[str, typer.Option(help="27-character GB 45438 provider code")],
    filing_number: Annotated[str | None, typer.Option(help="Algorithm filing number (DSP-19)")] = None,
    filing_link: Annotated[str | None, typer.Option(help="Public-notice link of the filing")] = None,
    profile: Annotated[str, typer.Option(help="Rulebook profile: cn, eu or cn+eu")] = "cn",
    upstream_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL, e.g. http://host/v1")
    ] = None,
    upstream_key: Annotated[str | None, typer.Option(help="Upstream API key (stored encrypted)")] = None,
    upstream_model: Annotated[str | None, typer.Option(help="Default upstream model")] = None,
    blocked_term: Annotated[list[str] | None, typer.Option(help="A term to refuse (repeatable)")] = None,
    label_text: Annotated[str | None, typer.Option(help="Explicit text label wording (GB-5.1)")] = None,
    label_position: Annotated[str | None, typer.Option(help="start, end or both")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a service."""
    from synthgate.governance import service as governance

    gateway = _gateway()
    settings: dict[str, Any] = {}
    if blocked_term:
        settings["blocked_terms"] = blocked_term
    if label_text:
        settings["label_text"] = label_text
    if label_position:
        settings["label_position"] = label_position

    def create() -> dict[str, Any]:
        with gateway.db.session() as session:
            service = governance.create_service(
                session,
                gateway.keys,
                slug=slug,
                name=name,
                provider_code=provider_code,
                actor=_actor(),
                filing_number=filing_number,
                filing_link=filing_link,
                profile=profile,
                upstream_url=upstream_url,
                upstream_key=upstream_key,
                upstream_model=upstream_model,
                settings=settings,
            )
            return {"id": service.id, "slug": service.slug, "provider_code": service.provider_code}

    created = _run(create)
    if as_json:
        _print_json(created)
    else:
        out.print(f"service [bold]{created['slug']}[/bold] created ({created['id']})")


@service_app.command("webhook-secret")
def service_webhook_secret(
    service: Annotated[str, typer.Option(help="Service slug or id")],
) -> None:
    """Print the key the service's webhooks are signed with (HMAC-SHA256; the reveal is audited)."""
    from synthgate.governance import service as governance

    gateway = _gateway()

    def reveal() -> str:
        with gateway.db.session() as session:
            return governance.reveal_webhook_secret(session, gateway.keys, service, actor=_actor())

    typer.echo(_run(reveal))


@service_app.command("list")
def service_list(as_json: JsonOpt = False) -> None:
    """List services."""
    from synthgate.governance import service as governance

    gateway = _gateway()
    with gateway.db.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": s.id,
                "slug": s.slug,
                "name": s.name,
                "provider_code": s.provider_code,
                "filing_number": s.filing_number,
                "upstream_url": s.upstream_url,
                "active": s.active,
            }
            for s in governance.list_services(session)
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("slug", "name", "provider code", "filing", "upstream")
    for row in rows:
        table.add_row(
            row["slug"],
            row["name"],
            row["provider_code"],
            row["filing_number"] or "-",
            row["upstream_url"] or "-",
        )
    out.print(table)


@key_app.command("create")
def key_create(
    service: Annotated[str, typer.Option(help="Service slug or id")],
    name: Annotated[str, typer.Option(help="A note to tell keys apart")] = "",
    scope: Annotated[
        list[str] | None, typer.Option(help="generate and/or accounts (repeatable; default both)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once and stored only as a hash."""
    from synthgate.governance import service as governance

    gateway = _gateway()

    def create() -> dict[str, Any]:
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            issued = governance.create_api_key(session, svc, actor=_actor(), name=name, scopes=scope)
            return {
                "id": issued.key.id,
                "prefix": issued.key.prefix,
                "scopes": issued.key.scopes,
                "key": issued.secret,
            }

    created = _run(create)
    if as_json:
        _print_json(created)
    else:
        out.print(f"API key for [bold]{service}[/bold] (scopes {', '.join(created['scopes'])}); shown once:")
        out.print(created["key"], soft_wrap=True)


@key_app.command("revoke")
def key_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix")]) -> None:
    """Revoke an API key; it stops working at once."""
    from synthgate.governance import service as governance

    gateway = _gateway()

    def revoke() -> str:
        with gateway.db.session() as session:
            return governance.revoke_api_key(session, key, actor=_actor()).prefix

    prefix = _run(revoke)
    out.print(f"revoked {prefix}…")


@key_app.command("list")
def key_list(
    service: Annotated[str, typer.Option(help="Service slug or id")], as_json: JsonOpt = False
) -> None:
    """List a service's keys (prefixes only)."""
    from synthgate.governance import service as governance

    gateway = _gateway()

    def rows() -> list[dict[str, Any]]:
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            return [
                {
                    "id": k.id,
                    "prefix": k.prefix,
                    "name": k.name,
                    "scopes": k.scopes,
                    "revoked": k.revoked_at is not None,
                }
                for k in governance.list_api_keys(session, svc)
            ]

    data = _run(rows)
    if as_json:
        _print_json(data)
        return
    table = Table("id", "prefix", "name", "scopes", "revoked")
    for row in data:
        table.add_row(
            row["id"], row["prefix"], row["name"], ",".join(row["scopes"]), "yes" if row["revoked"] else ""
        )
    out.print(table)


# --- accounts -------------------------------------------------------------------------------------


@account_app.command("list")
def account_list(
    service: Annotated[str, typer.Option(help="Service slug or id")],
    query: Annotated[
        str | None, typer.Option(help="User id, account id, or a verified phone / ID / USCC")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List or search a service's accounts."""
    from synthgate.governance import service as governance
    from synthgate.identity import service as identity

    gateway = _gateway()

    def rows() -> list[dict[str, Any]]:
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            found = identity.search_accounts(
                session, gateway.keys, service_id=svc.id, query=query, status=status, limit=limit
            )
            return [identity.account_summary(a) for a in found]

    data = _run(rows)
    if as_json:
        _print_json(data)
        return
    table = Table("user id", "account", "kind", "status", "verified")
    for row in data:
        table.add_row(
            row["user_id"], row["id"], row["kind"], row["status"], row["verification_method"] or "no"
        )
    out.print(table)


@account_app.command("show")
def account_show(
    user_id: Annotated[str, typer.Argument(help="The provider's user id")],
    service: Annotated[str, typer.Option(help="Service slug or id")],
    as_json: JsonOpt = False,
) -> None:
    """Show one account with its status history."""
    from synthgate.governance import service as governance
    from synthgate.identity import service as identity

    gateway = _gateway()

    def show() -> dict[str, Any]:
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            account = identity.get_account(session, svc, user_id)
            summary = identity.account_summary(account)
            summary["history"] = [
                {
                    "at": c.created_at.isoformat(),
                    "from": c.from_status,
                    "to": c.to_status,
                    "reason": c.reason,
                    "operator": c.operator,
                    "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                }
                for c in identity.status_history(session, account)
            ]
            return summary

    data = _run(show)
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        if key != "history":
            out.print(f"[bold]{key}[/bold]: {value}")
    for change in data["history"]:
        out.print(
            f"  {change['at']}  {change['from']} → {change['to']}  "
            f"by {change['operator']}: {change['reason']}"
        )


@account_app.command("set-status")
def account_set_status(
    user_id: Annotated[str, typer.Argument(help="The provider's user id")],
    status: Annotated[str, typer.Argument(help="active, warned, restricted, suspended or closed")],
    service: Annotated[str, typer.Option(help="Service slug or id")],
    reason: Annotated[str, typer.Option(help="Why (kept in the record and the audit log)")],
    until: Annotated[
        str | None, typer.Option(help="Expiry, ISO 8601 (e.g. 2026-12-31T00:00:00+08:00)")
    ] = None,
    restrict: Annotated[list[str] | None, typer.Option(help="Restricted feature (repeatable)")] = None,
) -> None:
    """Change an account's status (warn, restrict, suspend, close, or reinstate)."""
    from synthgate.errors import InvalidInput
    from synthgate.governance import service as governance
    from synthgate.identity import service as identity

    gateway = _gateway()

    def change() -> str:
        expires = None
        if until:
            try:
                expires = dt.datetime.fromisoformat(until)
            except ValueError as exc:
                raise InvalidInput(f"--until is not an ISO 8601 date-time: {until!r}") from exc
            if expires.tzinfo is None:
                raise InvalidInput("--until needs a time zone, e.g. +08:00")
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            account = identity.get_account(session, svc, user_id)
            identity.set_status(
                session,
                account,
                status,
                reason=reason,
                operator=_actor(),
                expires_at=expires,
                restrictions=restrict,
            )
            return identity.effective_status(account)

    out.print(f"{user_id}: {_run(change)}")


# --- rules ----------------------------------------------------------------------------------------


@rules_app.command("publish")
def rules_publish(
    service: Annotated[str, typer.Option(help="Service slug or id")],
    version: Annotated[str, typer.Option(help="Version label, e.g. 2026-11")],
    title: Annotated[str, typer.Option(help="Title shown on the public page")],
    file: Annotated[
        Path,
        typer.Option(help="Text or Markdown file with the rules and agreement", exists=True, dir_okay=False),
    ],
) -> None:
    """Publish a new rules version; every user must accept it before the next generation."""
    from synthgate.governance import service as governance
    from synthgate.rules import service as rules

    gateway = _gateway()
    body = file.read_text(encoding="utf-8")

    def publish() -> str:
        with gateway.db.session() as session:
            svc = governance.get_service(session, service)
            rules.publish(session, svc, version=version, title=title, body=body, actor=_actor())
            return f"{gateway.settings.public_base_url}/rules/{svc.slug}"

    url = _run(publish)
    out.print(f"published version [bold]{version}[/bold]: {url}")


# --- operators ------------------------------------------------------------------------------------


@operator_app.command("create")
def operator_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[str, typer.Option(help="admin, reviewer, compliance or auditor")],
) -> None:
    """Create a console operator; prints a one-time password to change at first login."""
    from synthgate.operators import service as operators

    gateway = _gateway()

    def create() -> str:
        with gateway.db.session() as session:
            _, password = operators.create_operator(
                session, username=username, role=role, actor=_actor(), must_change_password=True
            )
            return password

    password = _run(create)
    out.print(f"operator [bold]{username}[/bold] ({role}); one-time password: [bold]{password}[/bold]")


# --- audit ----------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    bundle: Annotated[
        Path | None,
        typer.Argument(help="An exported bundle to verify offline (no database is opened)", dir_okay=False),
    ] = None,
    start: Annotated[int | None, typer.Option("--from", help="First leaf index to recompute")] = None,
    end: Annotated[int | None, typer.Option("--to", help="Recompute leaves before this index")] = None,
    key: Annotated[
        str | None, typer.Option(help="Pin the log's verifier key (name+id+key), for bundles")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Integrate pending events, then recompute every leaf and check every signed checkpoint.

    With BUNDLE, check an exported bundle instead, with no database at all.
    """
    from synthgate.audit import service as audit
    from synthgate.audit.checkpoint import CheckpointError, NoteVerifier

    if bundle is not None:
        from synthgate.audit.bundle import verify_bundle

        try:
            data = bundle.read_bytes()
            pinned = NoteVerifier.from_vkey(key) if key else None
            report = _run(lambda: verify_bundle(data, pinned))
        except (OSError, CheckpointError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    else:
        from synthgate.jobs import audit_signer, integrate_and_checkpoint

        gateway = _gateway()
        integrate_and_checkpoint(gateway)
        signer = audit_signer(gateway)
        with gateway.db.session() as session:
            report = _run(
                lambda: audit.verify(session, NoteVerifier.from_vkey(signer.vkey()), start=start, end=end)
            )
    if as_json:
        _print_json(report.as_dict())
    elif report.ok:
        out.print(
            f"[green]audit log verifies[/green]: {report.size} events, {report.checkpoints} checkpoints"
        )
    else:
        out.print(f"[red]audit log does NOT verify[/red]; first bad index {report.first_bad_index}")
        for problem in report.problems[:20]:
            out.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("inclusion")
def audit_inclusion(
    index: Annotated[int, typer.Argument(help="Leaf index")],
    size: Annotated[
        int | None, typer.Option(help="Tree size of a signed checkpoint (default newest)")
    ] = None,
) -> None:
    """Print the inclusion proof of one leaf in a signed checkpoint, as JSON."""
    from synthgate.audit import service as audit
    from synthgate.jobs import integrate_and_checkpoint

    gateway = _gateway()
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        _print_json(_run(lambda: audit.inclusion(session, index, size)))


@audit_app.command("consistency")
def audit_consistency(
    old: Annotated[int, typer.Argument(help="Tree size of the older signed checkpoint")],
    new: Annotated[int | None, typer.Option(help="Tree size of the newer one (default newest)")] = None,
) -> None:
    """Print the consistency proof between two signed checkpoints, as JSON."""
    from synthgate.audit import service as audit
    from synthgate.jobs import integrate_and_checkpoint

    gateway = _gateway()
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        _print_json(_run(lambda: audit.consistency(session, old, new)))


@audit_app.command("purge")
def audit_purge(as_json: JsonOpt = False) -> None:
    """Apply retention now: drop payloads past retention (leaf hashes stay), delete old generations."""
    from synthgate.jobs import retention_purge

    gateway = _gateway()
    result = _run(lambda: retention_purge(gateway))
    data = {"events": result.events, "generations": result.generations, "ranges": result.ranges}
    if as_json:
        _print_json(data)
    else:
        out.print(f"purged {result.events} event payloads and {result.generations} generation records")


@audit_app.command("hold")
def audit_hold(
    case: Annotated[str, typer.Option(help="The case the hold belongs to")],
    subject: Annotated[str, typer.Option(help="Account id or produce id to keep")],
    reason: Annotated[str, typer.Option(help="Why")] = "",
) -> None:
    """Place a legal hold: the subject's records outlive their retention until it is released."""
    from synthgate.audit import service as audit

    gateway = _gateway()

    def place() -> int:
        with gateway.db.session() as session:
            return audit.place_hold(
                session, case_id=case, subject_id=subject, reason=reason, actor=_actor()
            ).id

    out.print(f"legal hold {_run(place)} placed")


@audit_app.command("release")
def audit_release(hold: Annotated[int, typer.Argument(help="Hold id")]) -> None:
    """Release a legal hold."""
    from synthgate.audit import service as audit

    gateway = _gateway()

    def release() -> None:
        with gateway.db.session() as session:
            audit.release_hold(session, hold, actor=_actor())

    _run(release)
    out.print(f"legal hold {hold} released")


@audit_app.command("shred")
def audit_shred(subject: Annotated[str, typer.Argument(help="Data subject, e.g. account:<id>")]) -> None:
    """Erase a subject's personal data in the log by destroying its key (GAI-11); the tree still verifies."""
    from synthgate.audit import service as audit

    gateway = _gateway()
    with gateway.db.session() as session:
        done = audit.shred_subject(session, subject, actor=_actor())
    out.print(f"{subject}: {'key destroyed' if done else 'no key (nothing sealed, or shredded already)'}")


def _parse_when(value: str | None, *, end: bool) -> dt.datetime | None:
    """A date (whole day; ``--to`` includes it) or an ISO date-time; without a zone, UTC."""
    from synthgate.errors import InvalidInput

    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
            return day + dt.timedelta(days=1) if end else day
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.command("export")
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle file to write", dir_okay=False)],
    since: Annotated[str | None, typer.Option("--from", help="First day (or date-time), UTC")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day, included (or end date-time)")] = None,
    account: Annotated[str | None, typer.Option(help="Only events of this account id")] = None,
) -> None:
    """Write a signed audit bundle for the authority (DSP-21); check it with `audit verify BUNDLE`."""
    from sqlalchemy import select

    from synthgate.audit.bundle import build_bundle
    from synthgate.jobs import integrate_and_checkpoint
    from synthgate.provenance.models import Generation

    gateway = _gateway()
    start = _run(lambda: _parse_when(since, end=False))
    stop = _run(lambda: _parse_when(until, end=True))
    integrate_and_checkpoint(gateway)

    def build() -> str:
        with gateway.db.session() as session:
            produce: list[str] = []
            if account:
                produce = list(
                    session.scalars(select(Generation.produce_id).where(Generation.account_id == account))
                )
            text = build_bundle(
                session,
                gateway.keys.audit_signing_key,
                gateway.settings.audit_origin,
                since=start,
                until=stop,
                account=account,
                produce_ids=produce,
            )
            from synthgate.audit import service as audit

            audit.record(
                session,
                "audit.exported",
                actor=_actor(),
                subject_type="audit_log",
                data={"from": since, "to": until, "account": account},
            )
            return text

    text = _run(build)
    output.write_text(text, encoding="utf-8")
    count = json.loads(text.split("\n", 1)[0])["count"]
    out.print(f"wrote {count} events to {output}")


@app.command("trace")
def trace(
    file: Annotated[
        Path, typer.Argument(help="A file or text found in the wild", exists=True, dir_okay=False)
    ],
    as_json: JsonOpt = False,
) -> None:
    """Find the generation behind a file: which evidence matched and how strongly (audited)."""
    from synthgate.provenance import service as provenance

    gateway = _gateway()
    data = file.read_bytes()
    with gateway.db.session() as session:
        result = provenance.trace(
            session,
            provenance.TraceInput(
                data=data, filename=file.name, keys=gateway.keys, settings=gateway.settings
            ),
            actor=_actor(),
            show_account=True,
        )
        found = result.as_dict()
    if as_json:
        _print_json(found)
        return
    if not found["matches"]:
        out.print("no generation found")
    for match in found["matches"]:
        gen = match["generation"]
        kinds = ", ".join(e["matcher"] for e in match["evidence"])
        out.print(
            f"{gen['produce_id']}  strength {match['strength']:.2f}  ({kinds})  account {gen['account_id']}"
        )
    if not found["matches"]:
        raise typer.Exit(1)


# --- implicit labels: inspect and propagate (LM-6) --------------------------------------------------


@app.command("inspect")
def inspect_file(
    path: Annotated[Path, typer.Argument(help="File to inspect (format detected from content)")],
    declared: Annotated[bool, typer.Option("--declared", help="The uploader declared AI content")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read every AIGC label in a file, check its binding and give the LM-6 tier."""
    from synthgate.keys import KeyStore
    from synthgate.labeling.inspect import inspect
    from synthgate.media.limits import MediaLimits

    settings = get_settings()
    if not path.is_file():
        err.print(f"[red]error:[/red] {path} is not a file")
        raise typer.Exit(2)
    from synthgate.labeling.service import binding_verifiers, c2pa_paths

    verifier = binding_verifiers(KeyStore(settings))
    anchors = c2pa_paths(settings)[2]
    report = _run(
        lambda: inspect(
            path.read_bytes(),
            verifier=verifier,
            declared=declared,
            limits=MediaLimits.from_settings(settings),
            trust_anchors=anchors.read_bytes() if anchors.is_file() else None,
            thorough=True,
        )
    )
    data = report.to_dict()
    if as_json:
        _print_json(data)
        return
    out.print(f"[bold]{path}[/bold]: {data['container']}, tier [bold]{data['tier']}[/bold]")
    for reason in data["reasons"]:
        out.print(f"  - {reason}")
    for found in data["labels"]:
        out.print(f"  label in {found['where']} ({found['form']}): {found['raw']}")
    if data["binding"]:
        out.print(f"  binding: {data['binding']}")
    if data["c2pa"].get("present"):
        out.print(f"  C2PA: {data['c2pa']['state']}, AI-generated {data['c2pa']['ai_generated']}")
    for finding in data["findings"]:
        out.print(f"  [yellow]finding:[/yellow] {finding}")


@app.command("propagate")
def propagate_file(
    path: Annotated[Path, typer.Argument(help="File received by the platform")],
    platform: Annotated[str, typer.Option("--platform", help="The platform's 27-character provider code")],
    content_id: Annotated[str, typer.Option("--content-id", help="The platform's id for this content")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the labeled copy")],
    declared: Annotated[bool, typer.Option("--declared", help="The uploader declared AI content")] = False,
) -> None:
    """Write the propagation elements (LM-6) into a copy, keeping the production fields."""
    from synthgate.keys import KeyStore
    from synthgate.labeling.propagate import propagate

    if not path.is_file():
        err.print(f"[red]error:[/red] {path} is not a file")
        raise typer.Exit(2)
    signer = KeyStore(get_settings()).labeling_signing_key
    labeled = _run(
        lambda: propagate(
            path.read_bytes(), platform=platform, content_id=content_id, declared=declared, signer=signer
        )
    )
    output.write_bytes(labeled)
    out.print(f"wrote {output} ({len(labeled)} bytes)")


# --- invisible watermarks (LM-5, DSP-18) ---------------------------------------------------------

watermark_app = typer.Typer(help="Keyed invisible watermarks (LM-5, DSP-18).", no_args_is_help=True)
app.add_typer(watermark_app, name="watermark")


def _watermark_keys(service: str | None) -> list[tuple[str, bytes]]:
    """(service slug, key) pairs: the named service, or every service when detecting without one."""
    from synthgate.governance import service as governance

    gateway = _gateway()
    with gateway.db.session() as session:
        services = (
            [governance.get_service(session, service)] if service else governance.list_services(session)
        )
        return [(svc.slug, gateway.keys.watermark_key(svc.id)) for svc in services]


@watermark_app.command("embed")
def watermark_embed(
    source: Annotated[
        Path, typer.Argument(help="Image, audio or video file to mark", exists=True, dir_okay=False)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the marked file")],
    payload: Annotated[str, typer.Option(help="64-bit payload, 16 hex digits")],
    service: Annotated[str, typer.Option(help="Service slug or id whose key marks the image")],
    as_json: JsonOpt = False,
) -> None:
    """Embed a keyed invisible watermark carrying PAYLOAD; exits 3 when the file cannot carry it.

    An image is written in the format its output name asks for; audio and video keep their container.
    """
    from synthgate.labeling.watermark import embed_for_output, parse_payload, watermark_image_bytes
    from synthgate.media import MediaItem

    bits = _run(lambda: parse_payload(payload))
    ((slug, key),) = _run(lambda: _watermark_keys(service))
    item = _run(lambda: MediaItem.from_bytes(source.read_bytes()))
    if item.medium == "image":
        suffix = output.suffix.lower().lstrip(".")
        formats = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF"}
        marked = _run(lambda: watermark_image_bytes(item.data, key, bits, output_format=formats.get(suffix)))
        embedded, data, fmt, reason = marked.embedded, marked.data, marked.format, marked.reason
    else:
        delivered, record = _run(lambda: embed_for_output(item, bits, key))
        embedded, data, fmt, reason = record.embedded, delivered.data, item.container, record.reason
    if embedded:
        output.write_bytes(data)
    report = {"embedded": embedded, "service": slug, "format": fmt, "reason": reason}
    if as_json:
        _print_json(report)
    elif embedded:
        out.print(f"wrote {output} ({fmt}, watermark of service {slug})")
    else:
        err.print(f"[red]not embeddable:[/red] {reason}")
    if not embedded:
        raise typer.Exit(3)


@watermark_app.command("detect")
def watermark_detect(
    file: Annotated[
        Path, typer.Argument(help="Image, audio or video file to examine", exists=True, dir_okay=False)
    ],
    service: Annotated[
        str | None, typer.Option(help="Service slug or id (default: try every service)")
    ] = None,
    max_p_value: Annotated[float, typer.Option(help="Decision threshold on the p-value")] = 1e-6,
    as_json: JsonOpt = False,
) -> None:
    """Look for a watermark; the p-value bounds the chance of a false detection (exit 1 when none)."""
    from synthgate.labeling.watermark import detect_any
    from synthgate.media import MediaItem

    item = _run(lambda: MediaItem.from_bytes(file.read_bytes()))
    keys = _run(lambda: _watermark_keys(service))
    # Trying k keys multiplies the false-positive chance by k, so each key gets 1/k of the budget.
    per_key = max_p_value / max(1, len(keys))
    best: dict[str, Any] = {"detected": False, "payload": None, "p_value": 1.0, "service": None}
    for slug, key in keys:
        found = _run(lambda key=key: detect_any(item, key, max_p_value=per_key))  # type: ignore[misc]
        p_value = min(1.0, found.p_value * max(1, len(keys)))
        if found.detected or p_value < best["p_value"]:
            best = {**found.as_dict(), "p_value": p_value, "service": slug}
        if found.detected:
            break
    if as_json:
        _print_json(best)
    elif best["detected"]:
        payload_text = best["payload"] or "unreadable (too damaged)"
        out.print(
            f"[green]watermark found[/green]: service {best['service']}, payload {payload_text}, "
            f"p ≤ {best['p_value']:.2e}"
        )
    else:
        out.print(f"no watermark found (best p-value {best['p_value']:.2g})")
    if not best["detected"]:
        raise typer.Exit(1)


# --- moderation (the feature library and screening) -----------------------------------------------

from synthgate.moderation.cli import eval_bank, library_app, screen  # noqa: E402

app.add_typer(library_app, name="library")
app.command("screen")(screen)
app.command("eval")(eval_bank)


# --- full labels (explicit + metadata + binding + C2PA) and C2PA certificates ----------------------

from synthgate.labeling.cli import certs_app, label  # noqa: E402

app.add_typer(certs_app, name="certs")
app.command("label")(label)


# --- governance: transparency figures and filing deadlines ----------------------------------------

from synthgate.governance.cli import filings_app, transparency_app  # noqa: E402

app.add_typer(transparency_app, name="transparency")
app.add_typer(filings_app, name="filings")


# --- development ----------------------------------------------------------------------------------


@dev_app.command("upstream")
def dev_upstream(
    port: Annotated[int, typer.Option(help="Port")] = 8901,
    reply: Annotated[str | None, typer.Option(help="Always answer this text")] = None,
) -> None:
    """Run a local OpenAI-compatible echo model on 127.0.0.1 (for trying the proxy)."""
    import uvicorn

    from synthgate.devtools.upstream import create_app

    uvicorn.run(create_app(reply=reply), host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    app()
