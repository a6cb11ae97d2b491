"""``synthgate label`` (one file or a whole folder, in parallel) and ``synthgate certs dev``."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from synthgate.config import get_settings
from synthgate.errors import SynthgateError

certs_app = typer.Typer(help="Certificates for signing C2PA manifests.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


@dataclass(frozen=True)
class _Job:
    src: Path
    dst: Path
    producer: str
    produce_id: str | None
    explicit: bool
    c2pa: bool
    edited: bool


_worker_labeler: Any = None


def _label_one(job: _Job) -> dict[str, Any]:
    """Runs in a worker process; one LabelService per process keeps fonts, keys and signer loaded."""
    global _worker_labeler
    from synthgate.labeling.service import LabelRequest, LabelService

    if _worker_labeler is None:
        _worker_labeler = LabelService(get_settings())
    try:
        data = job.src.read_bytes()
        result = _worker_labeler.label(
            data,
            LabelRequest(
                producer=job.producer,
                produce_id=job.produce_id,
                explicit=job.explicit,
                c2pa=job.c2pa,
                edited=job.edited,
            ),
        )
    except SynthgateError as exc:
        return {"file": str(job.src), "ok": False, "error": exc.message, "code": exc.code}
    except OSError as exc:
        return {"file": str(job.src), "ok": False, "error": str(exc), "code": "io"}
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target and renamed, so a crash never leaves a half-written output.
    tmp = job.dst.with_name(f".{job.dst.name}.partial")
    tmp.write_bytes(result.data)
    tmp.replace(job.dst)
    return {"file": str(job.src), "output": str(job.dst), "ok": True, **result.to_dict()}


def _jobs(src: Path, dst: Path, make: Any) -> list[_Job]:
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
        return [make(p, dst / p.relative_to(src)) for p in files]
    target = dst / src.name if dst.is_dir() else dst
    return [make(src, target)]


def label(
    src: Annotated[Path, typer.Argument(help="A file or a folder (labeled recursively)", exists=True)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file, or folder for a folder")],
    producer: Annotated[
        str,
        typer.Option(
            help="Provider code written as ContentProducer (27 characters, GB-PC)",
            envvar="SYNTHGATE_LABEL_PRODUCER",
        ),
    ],
    produce_id: Annotated[
        str | None, typer.Option("--produce-id", help="Content id (single file only; default random)")
    ] = None,
    no_explicit: Annotated[
        bool, typer.Option("--no-explicit", help="Metadata, binding and C2PA only (LM-9: log who gets it)")
    ] = False,
    no_c2pa: Annotated[bool, typer.Option("--no-c2pa", help="Do not sign a C2PA manifest")] = False,
    edited: Annotated[
        bool, typer.Option("--edited", help="The files are AI edits of users' files (C2PA c2pa.edited)")
    ] = False,
    workers: Annotated[int, typer.Option(help="Parallel worker processes (folders)")] = max(
        1, min(8, os.cpu_count() or 1)
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Label IN completely: explicit label, metadata label bound to the content, C2PA manifest.

    Every file either gets all its labels or is reported as an error: nothing is written
    unlabeled. The exit code is 1 when any file failed.
    """
    if src.is_dir() and produce_id:
        _err.print("[red]error:[/red] --produce-id names one file; a folder gets one id per file")
        raise typer.Exit(2)
    if src.is_dir() and output.exists() and not output.is_dir():
        _err.print(f"[red]error:[/red] {output} is a file; labeling a folder needs an output folder")
        raise typer.Exit(2)

    def make(path: Path, dst: Path) -> _Job:
        return _Job(path, dst, producer, produce_id, not no_explicit, not no_c2pa, edited)

    # A labeler left by an earlier call in this process (tests run many) holds that call's
    # settings and files; forked workers would inherit it. Each call starts from its own settings.
    global _worker_labeler
    _worker_labeler = None
    jobs = _jobs(src, output, make)
    results: list[dict[str, Any]] = []
    if len(jobs) == 1 or workers <= 1:
        results = [_label_one(job) for job in jobs]
    else:
        progress = Progress(
            TextColumn("labeling"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_err,
            disable=as_json and not sys.stderr.isatty(),
        )
        # forkserver, not fork: forking a process that runs other threads (a server, a database
        # pool, a test suite) can copy a lock or native library state mid-operation (Python 3.12
        # warns about it); workers start from a clean single-threaded server instead.
        context = multiprocessing.get_context("forkserver")
        with progress, ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            task = progress.add_task("label", total=len(jobs))
            futures: list[Future[dict[str, Any]]] = [pool.submit(_label_one, job) for job in jobs]
            for future in futures:
                results.append(future.result())
                progress.advance(task)
    failed = [r for r in results if not r["ok"]]
    if as_json:
        sys.stdout.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    else:
        for r in results:
            if r["ok"]:
                _out.print(
                    f"[green]labeled[/green] {r['file']} → {r['output']}  "
                    f"({r['container']}, explicit {r['explicit']}, c2pa {r['c2pa']}, "
                    f"id {r['label']['ProduceID']})"
                )
                for note in r.get("notes", []):
                    _out.print(f"  note: {note}")
            else:
                _err.print(f"[red]not labeled[/red] {r['file']}: {r['error']}")
        _out.print(f"{len(results) - len(failed)} labeled, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@certs_app.command("dev")
def certs_dev(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write (default <data dir>/c2pa)")
    ] = None,
    algorithm: Annotated[str, typer.Option("--alg", help="Signing key: es256 or ed25519")] = "es256",
    force: Annotated[bool, typer.Option(help="Replace an existing chain")] = False,
) -> None:
    """Make a development chain (root CA → intermediate → signer) for C2PA; not for production."""
    from synthgate.labeling.c2pa import make_dev_chain

    if algorithm not in ("es256", "ed25519"):
        _err.print("[red]error:[/red] --alg must be es256 or ed25519")
        raise typer.Exit(2)
    target = directory or get_settings().data_dir / "c2pa"
    if (target / "chain.pem").exists() and not force:
        _err.print(f"[red]error:[/red] {target} already holds a chain; use --force to replace it")
        raise typer.Exit(2)
    chain = make_dev_chain(target, algorithm=algorithm)  # type: ignore[arg-type]
    _out.print(f"trust anchor  {chain.root}\nsigning chain {chain.chain}\nsigning key   {chain.key}")
    _out.print("readers trust these manifests only with the anchor configured (c2pa_trust_anchors)")
