"""The FastAPI application: API routers, console and public pages, health and metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthgate import __version__, metrics
from synthgate.config import Settings, get_settings
from synthgate.errors import Refused, SynthgateError
from synthgate.gateway.sdk import Gateway

log = structlog.get_logger("synthgate.web")


class BodyLimitMiddleware:
    """Refuse bodies over the configured size with 413 before anything reads them whole."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_max_bytes: int | None = None,
        upload_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes if upload_max_bytes is not None else max_bytes
        self.upload_prefixes = upload_prefixes

    def limit_for(self, path: str) -> int:
        # Routes that carry media (generations with images, label and inspect uploads, complaint
        # evidence, consent enrolment) get their own, larger limit; every other body stays small.
        if any(path == prefix or path.startswith(prefix + "/") for prefix in self.upload_prefixes):
            return self.upload_max_bytes
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > max_bytes:
                    await _too_large(max_bytes, send)
                    return
        if not any(name == b"content-length" for name, _ in scope.get("headers", [])):
            # A body without a declared length (chunked) is read here, at most up to the limit,
            # then replayed; reading stops the moment it grows past the limit.
            chunks: list[bytes] = []
            received = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                received += len(message.get("body", b""))
                if received > max_bytes:
                    await _too_large(max_bytes, send)
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


async def _too_large(limit: int, send: Send) -> None:
    response = JSONResponse(
        {"error": {"code": "payload_too_large", "message": f"request body exceeds {limit} bytes"}},
        status_code=413,
    )
    await response({"type": "http"}, _noop_receive, send)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


class MetricsMiddleware:
    """Counts requests and their duration per route template. Plain ASGI: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream copy per request on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            metrics.HTTP_SECONDS.labels(path).observe(time.perf_counter() - started)


def _error_response(exc: SynthgateError) -> JSONResponse:
    headers = {}
    retry_after = exc.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status_code, headers=headers)


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> FastAPI:
    settings = settings or get_settings()
    gateway = gateway or Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=10.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        )
        app.state.db_limiter = anyio.CapacityLimiter(settings.db_concurrency)
        scheduler = None
        if settings.scheduler:
            from synthgate.jobs import start_scheduler

            scheduler = start_scheduler(gateway)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            await app.state.upstream.aclose()
            gateway.close()

    app = FastAPI(
        title="synthgate",
        version=__version__,
        description="Compliance gateway for generative-AI services: identity (DSP-9), rules (DSP-8), "
        "screening (DSP-10), labels (DSP-16/17, GB 45438), provenance and audit.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.settings = settings

    @app.exception_handler(Refused)
    async def refused_handler(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": exc.as_dict()}, status_code=exc.status_code)

    @app.exception_handler(SynthgateError)
    async def domain_error_handler(request: Request, exc: SynthgateError) -> JSONResponse:
        return _error_response(exc)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("database.unavailable", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return JSONResponse(
            {
                "error": {
                    "code": "database_unavailable",
                    "message": "the database is unavailable; retry shortly",
                }
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(OperationalError, database_unavailable)

    @app.exception_handler(DBAPIError)
    async def dbapi_error(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            return await database_unavailable(request, exc)
        raise exc

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Any:
        try:
            with gateway.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse(
                {"status": "unavailable", "database": "down"}, status_code=503, headers={"Retry-After": "5"}
            )
        return {"status": "ok", "database": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    from synthgate.audit.api import router as audit_router
    from synthgate.cases.api import router as complaints_router
    from synthgate.cases.pages import router as complaint_pages
    from synthgate.consent.api import router as consent_router
    from synthgate.consent.pages import router as consent_pages
    from synthgate.gateway.api import router as generations_router
    from synthgate.gateway.proxy import router as proxy_router
    from synthgate.governance.public import router as transparency_router
    from synthgate.identity.api import router as identity_router
    from synthgate.labeling.api import router as labels_router
    from synthgate.labeling.inspect_api import pages as inspect_pages
    from synthgate.labeling.inspect_api import router as inspect_router
    from synthgate.provenance.api import router as provenance_router
    from synthgate.rules.api import router as rules_router
    from synthgate.web.console import mount_console
    from synthgate.web.public import router as public_router

    app.include_router(identity_router)
    app.include_router(rules_router)
    app.include_router(generations_router)
    app.include_router(proxy_router)
    app.include_router(public_router)
    app.include_router(audit_router)
    app.include_router(provenance_router)
    app.include_router(inspect_router)
    app.include_router(inspect_pages)
    app.include_router(labels_router)
    app.include_router(transparency_router)
    app.include_router(complaints_router)
    app.include_router(complaint_pages)
    app.include_router(consent_router)
    app.include_router(consent_pages)
    mount_console(app)

    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_upload_body_bytes,
        upload_prefixes=tuple(settings.upload_path_prefixes),
    )
    return app
