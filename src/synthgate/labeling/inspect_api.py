"""Public label reading over HTTP (LM-6): ``POST /v1/inspect`` and an upload page at ``/inspect``.

Both are open to anyone (the public may check whether a file is AI-generated) and therefore
rate-limited per client address. Decoding runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from synthgate.errors import InvalidInput, RateLimited
from synthgate.gateway.sdk import Gateway
from synthgate.labeling.inspect import inspect
from synthgate.media.errors import MediaError
from synthgate.media.limits import MediaLimits
from synthgate.web.deps import get_gateway
from synthgate.web.templating import templates

router = APIRouter(tags=["labels"])
pages = APIRouter(include_in_schema=False)
WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """Per-client request counts over the last minute, in this worker's memory.

    With N workers the effective limit is N times the setting; good enough to stop one client
    from monopolising decoding, which is the point here.
    """

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, limit: int) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= limit:
                retry = int(hits[0] + WINDOW_SECONDS - now) + 1
                raise RateLimited(f"at most {limit} inspections per minute; retry later", retry_after=retry)
            hits.append(now)
            if len(self._hits) > 100_000:  # forget idle clients so memory stays bounded
                for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - WINDOW_SECONDS]:
                    del self._hits[key]


def _limiter(request: Request) -> SlidingWindowLimiter:
    limiter = getattr(request.app.state, "inspect_limiter", None)
    if limiter is None:
        limiter = request.app.state.inspect_limiter = SlidingWindowLimiter()
    return limiter


async def _upload(request: Request) -> tuple[bytes, bool]:
    """The file from a multipart form (field ``file``) or the raw body, and the declared flag."""
    declared = request.query_params.get("declared", "").lower() in ("1", "true", "yes", "on")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        declared = declared or str(form.get("declared", "")).lower() in ("1", "true", "yes", "on")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("send the file in the multipart field 'file'", field="file")
        data = await upload.read()
    else:
        data = await request.body()
    if not data:
        raise InvalidInput("the uploaded file is empty", field="file")
    return data, declared


async def _inspect(request: Request, gateway: Gateway) -> dict[str, Any]:
    settings = gateway.settings
    client = request.client.host if request.client else "unknown"
    _limiter(request).check(client, settings.inspect_rate_per_minute)
    data, declared = await _upload(request)
    from synthgate.labeling.service import binding_verifiers, c2pa_paths

    anchors_path = c2pa_paths(settings)[2]
    report = await run_in_threadpool(
        inspect,
        data,
        verifier=binding_verifiers(gateway.keys),
        declared=declared,
        limits=MediaLimits.from_settings(settings),
        trust_anchors=anchors_path.read_bytes() if anchors_path.is_file() else None,
        thorough=True,
    )
    return report.to_dict()


@router.post(
    "/v1/inspect",
    summary="Read the AIGC labels of a file and give the LM-6 tier (public, rate-limited)",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "declared": {"type": "boolean"},
                        },
                    }
                },
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def inspect_endpoint(request: Request, gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    return await _inspect(request, gateway)


@pages.get("/inspect", response_class=HTMLResponse)
def inspect_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "public/inspect.html", {"report": None, "error": None})


@pages.post("/inspect", response_class=HTMLResponse)
async def inspect_page_submit(request: Request, gateway: Gateway = Depends(get_gateway)) -> HTMLResponse:
    try:
        report = await _inspect(request, gateway)
    except (MediaError, InvalidInput, RateLimited) as exc:
        return templates.TemplateResponse(
            request,
            "public/inspect.html",
            {"report": None, "error": exc.message},
            status_code=exc.status_code,
        )
    return templates.TemplateResponse(request, "public/inspect.html", {"report": report, "error": None})
