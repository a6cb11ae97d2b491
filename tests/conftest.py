"""Shared fixtures.

The whole suite runs against SQLite by default and against PostgreSQL when
``SYNTHGATE_TEST_DATABASE_URL`` (or ``SYNTHGATE_DATABASE_URL``) names one: ``make test`` runs it
both ways. Every test starts from a migrated, empty database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from synthgate.config import Settings, normalise_database_url
from synthgate.db import upgrade
from synthgate.devtools.demo import DEMO_PROVIDER_CODE, CapturingSmsSender
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.identity import service as identity
from synthgate.rules import service as rules
from synthgate.web.app import create_app

TEST_DATABASE_URL = os.environ.get("SYNTHGATE_TEST_DATABASE_URL") or os.environ.get("SYNTHGATE_DATABASE_URL")
IS_POSTGRES = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith(("postgres", "postgresql")))


def pytest_report_header(config: pytest.Config) -> str:
    return f"synthgate database: {'PostgreSQL ' + str(TEST_DATABASE_URL) if IS_POSTGRES else 'SQLite'}"


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """Migrate once per session: a template SQLite file to copy, or the PostgreSQL schema."""
    if IS_POSTGRES:
        assert TEST_DATABASE_URL
        url = normalise_database_url(TEST_DATABASE_URL)
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(Settings(data_dir=tmp_path_factory.mktemp("pg-migrate"), database_url=url))
        return url
    data_dir = tmp_path_factory.mktemp("template")
    settings = Settings(data_dir=data_dir, database_url=None)
    upgrade(settings)
    return data_dir / "synthgate.db"


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, _migrated_template: Path | str) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if IS_POSTGRES:
        assert isinstance(_migrated_template, str)
        _reset_postgres(_migrated_template)
        return Settings(data_dir=data_dir, database_url=_migrated_template, scheduler=False)
    assert isinstance(_migrated_template, Path)
    shutil.copyfile(_migrated_template, data_dir / "synthgate.db")
    return Settings(data_dir=data_dir, database_url=None, scheduler=False)


@pytest.fixture
def sms() -> CapturingSmsSender:
    return CapturingSmsSender()


@pytest.fixture
def gateway(settings: Settings, sms: CapturingSmsSender) -> Iterator[Gateway]:
    gw = Gateway(settings, sms_sender=sms)
    yield gw
    gw.close()


@pytest.fixture
def app(settings: Settings, gateway: Gateway) -> FastAPI:
    return create_app(settings, gateway)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


# --- ready-made domain objects ------------------------------------------------------------------


@dataclass
class ServiceWithKey:
    service: Service
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_service(
    gateway: Gateway,
    slug: str = "chat",
    *,
    upstream_url: str | None = None,
    blocked_terms: list[str] | None = None,
    scopes: list[str] | None = None,
    **settings: Any,
) -> ServiceWithKey:
    with gateway.db.session() as session:
        service = governance.create_service(
            session,
            gateway.keys,
            slug=slug,
            name=f"{slug} service",
            provider_code=DEMO_PROVIDER_CODE,
            actor="test",
            filing_number="Beijing-XXX-202601010001",
            filing_link="https://beian.example.cn/notice/1",
            upstream_url=upstream_url,
            settings={"blocked_terms": blocked_terms or ["forbidden-term", "违禁词"], **settings},
        )
        issued = governance.create_api_key(session, service, actor="test", scopes=scopes)
        rules.publish(session, service, version="1", title="平台规则", body="Rules v1", actor="test")
        session.expunge(service)
    return ServiceWithKey(service, issued.secret)


def ready_user(gateway: Gateway, sms: CapturingSmsSender, service: Service, user: str = "u1") -> str:
    """An account that verified its phone through the real OTP flow and accepted the rules."""
    with gateway.db.session() as session:
        account, _ = identity.register_account(session, service, user, actor="test")
        phone = f"+86139{abs(hash(user)) % 10**8:08d}"
        challenge = identity.start_phone_verification(
            session, gateway.keys, gateway.settings, sms, account, phone
        )
        assert identity.confirm_phone_verification(
            session, gateway.keys, gateway.settings, account, challenge.id, sms.last_code()
        ).ok
        latest = rules.current(session, service)
        assert latest is not None
        rules.accept(session, account, latest.version)
    return user


@pytest.fixture
def chat(gateway: Gateway) -> ServiceWithKey:
    return make_service(gateway)


# --- real processes on loopback -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"process exited with {process.returncode}:\n{output[-4000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class LiveServer:
    url: str
    settings: Settings
    process: subprocess.Popen[bytes]


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHGATE_")}
    env.update(
        {
            "SYNTHGATE_DATA_DIR": str(settings.data_dir),
            "SYNTHGATE_SCHEDULER": "false",
            "SYNTHGATE_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    if settings.database_url:
        env["SYNTHGATE_DATABASE_URL"] = settings.database_url
    return env


def start_server(settings: Settings, **env: str) -> LiveServer:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synthgate",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-migrate",
        ],
        env=server_env(settings, SYNTHGATE_PORT=str(port), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", process)
    except BaseException:
        process.kill()
        raise
    return LiveServer(url=url, settings=settings, process=process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(settings)
    yield server
    stop(server.process)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A real headless Chromium (Debian's, driven by Playwright; no browser download)."""
    from playwright.sync_api import sync_playwright

    # Not a skip: `make test` installs it, and a browser test that silently skips proves nothing.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian 'chromium' (make system-deps)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def upstream() -> Iterator[str]:
    """A real OpenAI-compatible upstream process on loopback; yields its base URL (…/v1)."""
    from synthgate.devtools.upstream import run_upstream_process

    with run_upstream_process() as base_url:
        yield base_url


def _tool(name: str, package: str) -> str:
    """A test that needs a command-line reader fails when it is missing; it never skips."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `make system-deps` (Debian package {package})")
    return found


@pytest.fixture(scope="session")
def exiftool() -> str:
    return _tool("exiftool", "libimage-exiftool-perl")


@pytest.fixture(scope="session")
def ffprobe() -> str:
    return _tool("ffprobe", "ffmpeg")


@pytest.fixture(scope="session")
def openssl() -> str:
    return _tool("openssl", "openssl")
