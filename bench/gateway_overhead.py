"""How much latency does a gateway add? synthgate vs. the LiteLLM proxy, in front of the same upstream.

Everything runs on this machine over loopback (127.0.0.1):

* the upstream is ``synthgate.devtools.upstream`` (a deterministic OpenAI-compatible echo server, started as
  a subprocess), the same one for every target;
* ``direct``: the client talks to the upstream itself -- the baseline;
* ``litellm``: the LiteLLM proxy (``litellm --config bench/litellm_config/config.yaml --num_workers 1``),
  run from its own virtualenv ``.venv-bench``, no database, with a term-list guardrail on prompt and answer;
* ``synthgate``: ``synthgate serve`` set up by ``synthgate.devtools.demo.prepare_bench`` with the same
  upstream and the same blocked-term list (identity check, screening, labelling and logging on).

Each gateway runs as ONE worker process, so the comparison is per worker. For each target and concurrency
the client sends a warm-up, then a fixed number of non-streaming chat completions, and records per-request
latency. The added latency of a gateway is reported as differences of percentiles against the direct run
at the same concurrency: ``added p50 = p50(gateway) - p50(direct)``, likewise for p99.

Client design on a 2-core machine: ONE client process by default (asyncio on uvloop, ``--client-procs``
to change). The gateway under test is a single process and can use at most about one core; the upstream and
the client share the other. More client processes add no CPU here: they would take it from the gateway
and the upstream. Each of the ``concurrency`` workers has its own ``httpx.AsyncClient`` limited to one
connection (``concurrency`` connections in all). A single shared ``AsyncClient`` with a pool of
``concurrency`` connections (``--client-pool shared``) was measured to cost 2-3x more client CPU at 16-64
connections (httpcore's pool bookkeeping) and to inflate the tail (direct upstream, c=64: ~600 req/s and
p99 ~440 ms shared vs ~1,700 req/s and p99 ~90 ms per-worker). The harness reports the client's own CPU
use; when it is close to a full core at concurrency > 1 (typically only for the ``direct`` baseline at
16-64) the client is part of the bottleneck, so the direct percentiles there are an upper bound and the
added latency a slight underestimate. At concurrency 1 the client's own time per request is in both the
direct and the gateway latency and cancels out in the difference.

Gateway processes are started in their own process group and stopped (SIGTERM, then SIGKILL) at the end.
Every phase is bounded by ``--requests`` and ``--max-seconds``; all traffic stays on 127.0.0.1.

Install LiteLLM (never into .venv)::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install --require-hashes -r bench/requirements-litellm.txt

Run::

    .venv/bin/python bench/gateway_overhead.py --only litellm --json bench/results/overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LITELLM_CONFIG_DIR = ROOT / "bench" / "litellm_config"
DEFAULT_LITELLM_VENV = ROOT / ".venv-bench"
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DB = "synthgate_bench"
POSTGRES_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{POSTGRES_DB}"


def fresh_postgres_database() -> None:
    """Every run starts from an empty database of its own (never the test suite's)."""
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {POSTGRES_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {POSTGRES_DB}")


MODEL = "bench-model"
BENCH_USER = "bench-user"
LOOPBACK = "127.0.0.1"

# The term list given to both gateways (~50 terms, a few of them CJK, some multi-word).
BLOCKED_TERMS: tuple[str, ...] = (
    "forged passport",
    "counterfeit banknote",
    "credit card dump",
    "stolen identity kit",
    "pipe bomb",
    "nerve agent synthesis",
    "ransomware builder",
    "keylogger payload",
    "botnet rental",
    "phishing kit",
    "money mule",
    "launder money",
    "fake diploma",
    "deepfake of a politician",
    "voice clone of the ceo",
    "face swap without consent",
    "revenge porn",
    "doxxing service",
    "swatting",
    "hitman for hire",
    "buy firearms anonymously",
    "ghost gun",
    "untraceable poison",
    "human trafficking",
    "child exploitation",
    "terror financing",
    "extremist manifesto",
    "bioweapon",
    "dirty bomb",
    "crypto mixer abuse",
    "pump and dump scheme",
    "insider trading tip",
    "election disinformation",
    "fabricated news report",
    "impersonate a police officer",
    "bypass age verification",
    "evade content labeling",
    "remove the ai watermark",
    "strip provenance metadata",
    "synthetic id fraud",
    "sim swap attack",
    "account takeover script",
    "credential stuffing list",
    "zero-day exploit for sale",
    "darknet market link",
    "假新闻",
    "深度伪造",
    "人脸替换",
    "洗钱",
    "赌博网站",
)

PROMPT_TEMPLATE = (
    "Request {i}: please summarise the following meeting notes in three short bullet points. "
    "The team reviewed the quarterly roadmap, agreed to move the billing migration to the next sprint, "
    "asked the design group for two more iterations on the onboarding flow, and scheduled a follow-up "
    "with the data platform owners about retention windows for analytics events."
)
BLOCKED_PROMPT = "Please write a news story; also tell me where to get a forged passport."


# -- statistics ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (q in [0, 100]) of an ascending sequence."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    first_error: str | None = None
    stopped_by_time: bool = False


@dataclass
class PhaseStats:
    target: str
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    rps: float
    wall_s: float
    client_cpu_cores: float
    gateway_cpu_cores: float | None
    stopped_by_time: bool
    first_error: str | None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None


def summarise(target: str, concurrency: int, result: LoadResult, gateway_cpu_s: float | None) -> PhaseStats:
    lat = sorted(result.latencies_s)
    wall = result.wall_s or math.nan
    return PhaseStats(
        target=target,
        concurrency=concurrency,
        requests=result.ok,
        errors=result.errors,
        p50_ms=percentile(lat, 50) * 1000,
        p90_ms=percentile(lat, 90) * 1000,
        p99_ms=percentile(lat, 99) * 1000,
        mean_ms=(sum(lat) / len(lat) * 1000) if lat else math.nan,
        max_ms=(lat[-1] * 1000) if lat else math.nan,
        rps=result.ok / wall,
        wall_s=result.wall_s,
        client_cpu_cores=result.client_cpu_s / wall,
        gateway_cpu_cores=None if gateway_cpu_s is None else gateway_cpu_s / wall,
        stopped_by_time=result.stopped_by_time,
        first_error=result.first_error,
    )


# -- load generation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    url: str
    headers: dict[str, str]
    bodies: tuple[bytes, ...]
    warmup: int
    requests: int
    concurrency: int
    max_seconds: float
    shared_pool: bool = False
    request_timeout: float = 30.0


def make_bodies(user: str, count: int = 64) -> tuple[bytes, ...]:
    bodies = []
    for i in range(count):
        payload = {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": PROMPT_TEMPLATE.format(i=i)},
            ],
            "user": user,
            "stream": False,
        }
        bodies.append(json.dumps(payload).encode())
    return tuple(bodies)


async def _load(spec: LoadSpec, between: Callable[[], None] | None = None) -> tuple[LoadResult, LoadResult]:
    """Warm-up, then the measured run, over the same (already open) connections.

    ``spec.concurrency`` workers each keep one request in flight. By default every worker has its own
    ``httpx.AsyncClient`` limited to one connection (``concurrency`` connections in all); with
    ``shared_pool`` they share one client whose pool is limited to ``concurrency`` connections. Each phase is
    bounded by ``spec.max_seconds``. ``between`` is called (blocking, nothing in flight) between the phases.
    """
    import httpx

    headers = {"content-type": "application/json", **spec.headers}
    n_clients = 1 if spec.shared_pool else spec.concurrency
    per_client = spec.concurrency if spec.shared_pool else 1
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        httpx.AsyncClient(limits=limits, timeout=spec.request_timeout, trust_env=False, headers=headers)
        for _ in range(n_clients)
    ]

    async def phase(count: int) -> LoadResult:
        result = LoadResult()
        issued = 0
        deadline = time.monotonic() + spec.max_seconds

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal issued
            while issued < count:
                if time.monotonic() > deadline:
                    result.stopped_by_time = True
                    return
                body = spec.bodies[issued % len(spec.bodies)]
                issued += 1
                start = time.perf_counter()
                try:
                    resp = await client.post(spec.url, content=body)
                    elapsed = time.perf_counter() - start
                    if resp.status_code == 200 and resp.content.startswith(b"{"):
                        result.ok += 1
                        result.latencies_s.append(elapsed)
                        continue
                    error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                result.errors += 1
                if result.first_error is None:
                    result.first_error = error

        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % n_clients]) for i in range(spec.concurrency)))
        result.wall_s = time.perf_counter() - wall0
        result.client_cpu_s = time.process_time() - cpu0
        return result

    try:
        warm = await phase(spec.warmup)
        if between is not None:
            between()
        measured = await phase(spec.requests)
    finally:
        for client in clients:
            await client.aclose()
    return warm, measured


def _run_async(spec: LoadSpec, between: Callable[[], None] | None) -> tuple[LoadResult, LoadResult]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_load(spec, between))
    return uvloop.run(_load(spec, between))


def _client_proc_main(spec: LoadSpec, warm_done: Any, go: Any, queue: Any) -> None:
    try:

        def between() -> None:
            warm_done.wait(timeout=spec.max_seconds + 120)
            go.wait(timeout=120)

        warm, measured = _run_async(spec, between)
        queue.put(("ok", asdict(warm), asdict(measured)))
    except BaseException as exc:
        queue.put(("error", repr(exc), None))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _merge(total: LoadResult, part: LoadResult) -> None:
    total.ok += part.ok
    total.errors += part.errors
    total.latencies_s.extend(part.latencies_s)
    total.wall_s = max(total.wall_s, part.wall_s)
    total.client_cpu_s += part.client_cpu_s
    total.first_error = total.first_error or part.first_error
    total.stopped_by_time = total.stopped_by_time or part.stopped_by_time


def run_load(
    spec: LoadSpec, procs: int, between: Callable[[], None] | None = None
) -> tuple[LoadResult, LoadResult]:
    """Warm-up + measured run from ``procs`` client processes (1 = in this process), results merged.

    ``between`` runs in this process after every client has finished its warm-up and before any starts
    the measured run.
    """
    procs = min(procs, spec.concurrency)
    if procs <= 1:
        return _run_async(spec, between)
    ctx = multiprocessing.get_context("spawn")
    warm_done, go = ctx.Barrier(procs + 1), ctx.Barrier(procs + 1)
    queue = ctx.Queue()
    workers = []
    splits = zip(
        _split(spec.concurrency, procs), _split(spec.warmup, procs), _split(spec.requests, procs), strict=True
    )
    for conc, warmup, count in splits:
        sub = LoadSpec(
            spec.url, spec.headers, spec.bodies, warmup, count, conc, spec.max_seconds, spec.shared_pool
        )
        proc = ctx.Process(target=_client_proc_main, args=(sub, warm_done, go, queue), daemon=True)
        proc.start()
        workers.append(proc)
    warm_total, measured_total = LoadResult(), LoadResult()
    try:
        warm_done.wait(timeout=spec.max_seconds + 180)
        if between is not None:
            between()
        go.wait(timeout=60)
        for _ in range(procs):
            status, warm_d, measured_d = queue.get(timeout=spec.max_seconds + 180)
            if status != "ok":
                raise RuntimeError(f"client process failed: {warm_d}")
            _merge(warm_total, LoadResult(**warm_d))
            _merge(measured_total, LoadResult(**measured_d))
    finally:
        for proc in workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return warm_total, measured_total


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _clk_tck() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def process_tree_cpu_s(root_pid: int) -> float | None:
    """User+system CPU seconds used so far by ``root_pid`` and its live descendants (Linux /proc)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tck = _clk_tck()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tck
    if root_pid not in times:
        return None
    total = 0.0
    for pid, cpu in times.items():
        cur = pid
        for _ in range(64):
            if cur == root_pid:
                total += cpu
                break
            cur = parents.get(cur, 0)
            if cur <= 1:
                break
    return total


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ManagedProcess:
    """A server subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 -- closed in stop()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:]) or "<empty log>"

    def wait_http(self, url: str, timeout: float) -> float:
        """Wait until ``url`` answers any HTTP response; returns seconds since start."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise RuntimeError(
                        f"{self.name} exited with code {code} during startup; log tail "
                        f"({self.log_path}):\n{self.log_tail()}"
                    )
                try:
                    client.get(url)
                    return time.monotonic() - self.started_at
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.name} did not answer {url} within {timeout:.0f} s; log tail "
                        f"({self.log_path}):\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        else:
            # The leader is gone; make sure no child it started lingers in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    # Loopback only: no proxies, and nothing that points a gateway at a real database or cache.
    for key in list(env):
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[key]
    for key in ("DATABASE_URL", "DIRECT_URL", "REDIS_URL", "REDIS_HOST", "PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Gateway:
    name: str
    url: str
    headers: dict[str, str]
    user: str
    process: ManagedProcess
    startup_s: float
    version: str


def litellm_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    return out.stdout.strip() or "unknown"


@contextlib.contextmanager
def start_litellm(
    venv: Path, upstream_url: str, terms_file: Path, workdir: Path, startup_timeout: float
) -> Iterator[Gateway]:
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        raise SystemExit(
            f"LiteLLM is not installed in {venv}. Install it (never into .venv) with:\n"
            f"  python3 -m venv {venv} && {venv}/bin/pip install --require-hashes "
            "-r bench/requirements-litellm.txt"
        )
    port = free_port()
    master_key = "sk-bench-" + os.urandom(8).hex()
    env = _clean_env()
    env.update(
        {
            "BENCH_UPSTREAM_API_BASE": upstream_url,
            "BENCH_LITELLM_MASTER_KEY": master_key,
            "BENCH_BLOCKED_TERMS_FILE": str(terms_file),
            # Offline: use the bundled model cost map instead of fetching it from the internet.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY_DISABLED": "true",
            "HF_HUB_OFFLINE": "1",
            "DO_NOT_TRACK": "1",
            # LiteLLM's production recommendations: no debug/info logs, no load_dotenv().
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
        }
    )
    cmd = [
        str(exe),
        "--config",
        str(LITELLM_CONFIG_DIR / "config.yaml"),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proc = ManagedProcess("litellm", cmd, env, LITELLM_CONFIG_DIR, workdir / "litellm.log")
    try:
        startup = proc.wait_http(f"http://{LOOPBACK}:{port}/health/liveliness", startup_timeout)
        yield Gateway(
            name="litellm",
            url=f"http://{LOOPBACK}:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {master_key}"},
            user=BENCH_USER,
            process=proc,
            startup_s=startup,
            version=litellm_version(venv),
        )
    finally:
        proc.stop()


def load_prepare_bench() -> Callable[..., dict[str, str]]:
    try:
        demo = importlib.import_module("synthgate.devtools.demo")
    except ImportError as exc:
        raise SystemExit(
            "synthgate.devtools.demo is not available yet "
            f"({exc}); it provides prepare_bench() for the synthgate side. Run with --only litellm for now."
        ) from None
    prepare = getattr(demo, "prepare_bench", None)
    if prepare is None:
        raise SystemExit(
            "synthgate.devtools.demo has no prepare_bench() yet; run with --only litellm for now."
        )
    fn: Callable[..., dict[str, str]] = prepare
    return fn


def synthgate_command() -> list[str]:
    script = Path(sys.executable).parent / "synthgate"
    if script.exists():
        return [str(script)]
    found = shutil.which("synthgate")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from synthgate.cli import main; sys.exit(main())"]


@contextlib.contextmanager
def start_synthgate(
    upstream_url: str, database: str, workdir: Path, startup_timeout: float
) -> Iterator[Gateway]:
    prepare_bench = load_prepare_bench()
    data_dir = workdir / "synthgate-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = POSTGRES_URL if database == "postgres" else f"sqlite:///{data_dir / 'synthgate.db'}"
    if database == "postgres":
        fresh_postgres_database()
    setup = prepare_bench(data_dir, database_url, upstream_url, list(BLOCKED_TERMS))
    port = free_port()
    env = _clean_env()
    env["PYTHONPATH"] = str(SRC)
    env["SYNTHGATE_DATA_DIR"] = str(data_dir)
    env["SYNTHGATE_DATABASE_URL"] = database_url
    cmd = [*synthgate_command(), "serve", "--host", LOOPBACK, "--port", str(port), "--workers", "1"]
    proc = ManagedProcess("synthgate", cmd, env, ROOT, workdir / "synthgate.log")
    try:
        startup = proc.wait_http(f"http://{LOOPBACK}:{port}/healthz", startup_timeout)
        try:
            from importlib.metadata import version

            sg_version = version("synthgate")
        except Exception:
            sg_version = "dev"
        yield Gateway(
            name="synthgate",
            url=f"http://{LOOPBACK}:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {setup['api_key']}"},
            user=setup["user"],
            process=proc,
            startup_s=startup,
            version=f"{sg_version} ({database})",
        )
    finally:
        proc.stop()


def check_screening(gateway: Gateway) -> str:
    """Send one prompt with a blocked term; the gateway must refuse it (4xx)."""
    import httpx

    body = {"model": MODEL, "messages": [{"role": "user", "content": BLOCKED_PROMPT}], "user": gateway.user}
    with httpx.Client(trust_env=False, timeout=30.0, headers=gateway.headers) as client:
        resp = client.post(gateway.url, json=body)
    if 400 <= resp.status_code < 500:
        return f"blocked prompt refused with HTTP {resp.status_code}"
    raise RuntimeError(
        f"{gateway.name} did not refuse a prompt with a blocked term (HTTP {resp.status_code}: "
        f"{resp.text[:300]}); the comparison would be unfair."
    )


# -- orchestration -------------------------------------------------------------------------------


def measure(
    target: str,
    url: str,
    headers: dict[str, str],
    user: str,
    args: argparse.Namespace,
    concurrency: int,
    gateway_pid: int | None,
) -> PhaseStats:
    """Warm-up (discarded), then the measured run; the gateway's CPU time is taken over the measured run."""
    spec = LoadSpec(
        url=url,
        headers=headers,
        bodies=make_bodies(user),
        warmup=max(args.warmup, 2 * concurrency),
        requests=args.requests,
        concurrency=concurrency,
        max_seconds=args.max_seconds,
        shared_pool=args.client_pool == "shared",
    )
    cpu_marks: list[float | None] = []

    def mark() -> None:
        cpu_marks.append(process_tree_cpu_s(gateway_pid) if gateway_pid else None)

    warm, measured = run_load(spec, args.client_procs, between=mark)
    if warm.errors and not warm.ok:
        raise RuntimeError(f"{target}: every warm-up request failed, e.g. {warm.first_error}")
    mark()
    before, after = cpu_marks[0], cpu_marks[-1]
    gateway_cpu = after - before if before is not None and after is not None else None
    return summarise(target, concurrency, measured, gateway_cpu)


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or math.isnan(ours) or math.isnan(theirs) or theirs == 0:
        return None
    return ours / theirs


def render(stats: list[PhaseStats], meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # piped or redirected output: do not squeeze the tables into 80 columns
    console.print(
        f"[bold]Gateway overhead[/bold] — {meta['machine']}; every gateway runs ONE worker process; "
        f"upstream delay {meta['upstream_delay_ms']} ms; {meta['client']}; load average at start/end "
        f"{meta['loadavg_at_start']} / {meta.get('loadavg_at_end')}"
    )
    for name, info in meta["gateways"].items():
        console.print(
            f"  {name}: version {info['version']}, startup {info['startup_s']:.1f} s, "
            f"RSS after run {fmt(info.get('rss_mb'), 0)} MB, screening check: {info['screening']}"
        )
    table = Table(title="Latency per target and concurrency (non-streaming chat completions)")
    for col in (
        "target",
        "conc",
        "ok",
        "err",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "req/s",
        "client CPU",
        "gateway CPU",
    ):
        table.add_column(col, justify="left" if col == "target" else "right")
    for s in stats:
        table.add_row(
            s.target,
            str(s.concurrency),
            str(s.requests),
            str(s.errors),
            fmt(s.p50_ms),
            fmt(s.p99_ms),
            fmt(s.added_p50_ms),
            fmt(s.added_p99_ms),
            fmt(s.rps, 0),
            f"{s.client_cpu_cores:.0%}",
            "—" if s.gateway_cpu_cores is None else f"{s.gateway_cpu_cores:.0%}",
        )
    console.print(table)

    by_key = {(s.target, s.concurrency): s for s in stats}
    concurrencies = sorted({s.concurrency for s in stats})
    comp = Table(title="synthgate / LiteLLM (ours / theirs; < 1 is better for latency, > 1 for req/s)")
    for col in ("conc", "added p50", "added p99", "req/s"):
        comp.add_column(col, justify="right")
    for c in concurrencies:
        ours, theirs = by_key.get(("synthgate", c)), by_key.get(("litellm", c))
        comp.add_row(
            str(c),
            fmt(ratio(ours.added_p50_ms if ours else None, theirs.added_p50_ms if theirs else None)),
            fmt(ratio(ours.added_p99_ms if ours else None, theirs.added_p99_ms if theirs else None)),
            fmt(ratio(ours.rps if ours else None, theirs.rps if theirs else None)),
        )
    console.print(comp)
    for s in stats:
        if s.errors:
            console.print(f"[yellow]{s.target} c={s.concurrency}: {s.errors} errors, e.g. {s.first_error}")
        if s.stopped_by_time:
            console.print(f"[yellow]{s.target} c={s.concurrency}: stopped by --max-seconds")
        if s.concurrency > 1 and s.client_cpu_cores > 0.9 * max(1, meta["client_procs"]):
            console.print(
                f"[yellow]{s.target} c={s.concurrency}: the client used {s.client_cpu_cores:.0%} of a core; "
                "it may be the bottleneck here"
            )
    console.print(
        "added = percentile(gateway) − percentile(direct) at the same concurrency (a difference of "
        "percentiles, not a percentile of per-request differences)."
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per target/concurrency")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests (at least 2 x concurrency)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated list, e.g. 1,16,64")
    parser.add_argument("--only", choices=("litellm", "synthgate", "both"), default="both")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite", help="synthgate DB")
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="write results to this file")
    parser.add_argument("--upstream-delay-ms", type=float, default=0.0, help="fixed upstream latency")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time bound per measured phase")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes (default 1, see doc)")
    parser.add_argument(
        "--client-pool",
        choices=("per-worker", "shared"),
        default="per-worker",
        help="one 1-connection httpx client per worker (default) or one client with a pool of <concurrency>",
    )
    parser.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV)
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for a gateway")
    parser.add_argument("--workdir", type=Path, default=None, help="logs and synthgate data (default: temp)")
    args = parser.parse_args(argv)
    try:
        args.concurrency_levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency must be a comma-separated list of integers")
    if not args.concurrency_levels or min(args.concurrency_levels) < 1:
        parser.error("--concurrency values must be >= 1")
    if args.requests < 1 or args.warmup < 0 or args.client_procs < 1 or args.max_seconds <= 0:
        parser.error("--requests >= 1, --warmup >= 0, --client-procs >= 1, --max-seconds > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from synthgate.devtools.upstream import run_upstream_process

    targets = ["litellm", "synthgate"] if args.only == "both" else [args.only]
    if "synthgate" in targets:
        load_prepare_bench()  # fail early, before anything is started

    for term in BLOCKED_TERMS:
        for i in range(64):
            prompt = PROMPT_TEMPLATE.format(i=i).casefold()
            assert term.casefold() not in prompt, f"benchmark prompt contains blocked term {term!r}"

    workdir_ctx: contextlib.AbstractContextManager[str]
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir_ctx = contextlib.nullcontext(str(args.workdir))
    else:
        workdir_ctx = tempfile.TemporaryDirectory(prefix="synthgate-bench-")

    stats: list[PhaseStats] = []
    meta: dict[str, Any] = {
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "upstream_delay_ms": args.upstream_delay_ms,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency_levels,
        "client_procs": args.client_procs,
        "client": f"{args.client_procs} client process(es), httpx.AsyncClient ({args.client_pool} pool), "
        "connections = concurrency",
        "workers_per_gateway": 1,
        "database": args.database,
        "gateways": {},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_start": _loadavg(),
    }
    if meta["loadavg_at_start"] and meta["loadavg_at_start"][0] > 0.5:
        print(
            f"warning: 1-minute load average is {meta['loadavg_at_start'][0]:.2f} before the run; "
            "other work on this machine will distort the numbers",
            flush=True,
        )

    with workdir_ctx as wd, run_upstream_process(delay_ms=args.upstream_delay_ms) as upstream_url:
        workdir = Path(wd)
        terms_file = workdir / "blocked_terms.txt"
        terms_file.write_text("\n".join(BLOCKED_TERMS) + "\n", encoding="utf-8")
        direct: dict[int, PhaseStats] = {}
        for c in args.concurrency_levels:
            s = measure(
                "direct",
                f"{upstream_url}/chat/completions",
                {"authorization": "Bearer sk-direct"},
                BENCH_USER,
                args,
                c,
                None,
            )
            direct[c] = s
            stats.append(s)
            print(
                f"direct    c={c:<3} p50={s.p50_ms:.2f} ms p99={s.p99_ms:.2f} ms {s.rps:.0f} req/s",
                flush=True,
            )

        for target in targets:
            starter: contextlib.AbstractContextManager[Gateway]
            if target == "litellm":
                starter = start_litellm(
                    args.litellm_venv, upstream_url, terms_file, workdir, args.startup_timeout
                )
            else:
                starter = start_synthgate(upstream_url, args.database, workdir, args.startup_timeout)
            with starter as gw:
                screening = check_screening(gw)
                print(f"{target}: up in {gw.startup_s:.1f} s, version {gw.version}; {screening}", flush=True)
                for c in args.concurrency_levels:
                    s = measure(target, gw.url, gw.headers, gw.user, args, c, gw.process.pid)
                    s.added_p50_ms = s.p50_ms - direct[c].p50_ms
                    s.added_p99_ms = s.p99_ms - direct[c].p99_ms
                    stats.append(s)
                    print(
                        f"{target:<9} c={c:<3} p50={s.p50_ms:.2f} ms p99={s.p99_ms:.2f} ms {s.rps:.0f} req/s "
                        f"(added p50 {s.added_p50_ms:.2f} ms, p99 {s.added_p99_ms:.2f} ms)",
                        flush=True,
                    )
                meta["gateways"][target] = {
                    "version": gw.version,
                    "startup_s": round(gw.startup_s, 2),
                    "rss_mb": rss_mb(gw.process.pid),
                    "screening": screening,
                }

    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meta["loadavg_at_end"] = _loadavg()
    render(stats, meta)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        comparison = []
        by_key = {(s.target, s.concurrency): s for s in stats}
        for c in args.concurrency_levels:
            ours, theirs = by_key.get(("synthgate", c)), by_key.get(("litellm", c))
            comparison.append(
                {
                    "concurrency": c,
                    "added_p50_ratio": ratio(ours.added_p50_ms, theirs.added_p50_ms)
                    if ours and theirs
                    else None,
                    "added_p99_ratio": ratio(ours.added_p99_ms, theirs.added_p99_ms)
                    if ours and theirs
                    else None,
                    "rps_ratio": ratio(ours.rps, theirs.rps) if ours and theirs else None,
                }
            )
        out = {"meta": meta, "results": [asdict(s) for s in stats], "comparison_ours_over_theirs": comparison}
        args.json_out.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
