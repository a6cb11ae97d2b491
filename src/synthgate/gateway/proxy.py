"""OpenAI-compatible proxy: ``POST /v1/chat/completions`` (streaming and not),
``POST /v1/images/generations`` and ``POST /v1/audio/speech``.

Every stage runs inline: the check phase before the request is forwarded, output screening and
labels on the answer (as it streams), and the record before the stream is closed. The end user
is named by the request's ``user`` field or the ``X-Synthgate-User`` header; the upstream sees
only the account's pseudonymous id.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import httpx
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from synthgate.errors import InvalidInput, Refused, SynthgateError
from synthgate.gateway.pipeline import GenerationContext, service_detector, text_label_for
from synthgate.gateway.sdk import Gateway, messages_to_text
from synthgate.gateway.service import Completed
from synthgate.gateway.streaming import StreamGuard
from synthgate.labeling.answer import context_label_headers
from synthgate.media import MediaItem, MediaLimits
from synthgate.web.deps import Caller, authenticate_key, bearer, get_gateway

log = structlog.get_logger("synthgate.proxy")
T = TypeVar("T")
router = APIRouter(tags=["proxy"])


async def in_db_turn(limiter: anyio.CapacityLimiter, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run database work of the proxy in a thread, a few at a time per worker, in arrival order.

    With dozens of requests in flight, letting each into its own thread makes them fight over the
    GIL and the connection pool in no particular order, which is what stretches the tail; a FIFO
    capacity limiter (``Settings.db_concurrency``) keeps the queue in the event loop, fair and cheap.
    """
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)


class UpstreamError(SynthgateError):
    status_code = 502
    code = "upstream.error"


def _openai_error(exc: SynthgateError) -> JSONResponse:
    """Errors in the OpenAI shape, so existing clients show them, with our reason fields kept."""
    payload = exc.as_dict()
    body = {
        "error": {
            "message": exc.message,
            "type": "synthgate_refusal" if isinstance(exc, Refused) else "invalid_request_error",
            "code": getattr(exc, "reason", exc.code),
            "param": payload.get("field"),
            **payload,
        }
    }
    headers = {}
    if "retry_after" in payload:
        headers["Retry-After"] = str(payload["retry_after"])
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _upstream_request(
    caller: Caller,
    gateway: Gateway,
    body: dict[str, Any],
    ctx: GenerationContext,
    endpoint: str = "/chat/completions",
) -> tuple[str, dict[str, str], dict[str, Any]]:
    service = caller.service
    if not service.upstream_url:
        raise UpstreamError("this service has no upstream model configured", code="upstream.unconfigured")
    headers = {"Content-Type": "application/json"}
    if service.upstream_key_enc:
        headers["Authorization"] = "Bearer " + gateway.keys.decrypt(service.upstream_key_enc, "upstream-key")
    forwarded = dict(body)
    if ctx.account is not None:
        forwarded["user"] = ctx.account.id
    if service.upstream_model and not forwarded.get("model"):
        forwarded["model"] = service.upstream_model
    return service.upstream_url + endpoint, headers, forwarded


def _parse_body(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("'messages' must be a non-empty list", field="messages")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise InvalidInput("each message must be an object with a 'role'", field="messages")
    if body.get("n", 1) not in (1, None):
        raise InvalidInput("only n=1 is supported: each answer is labeled and recorded", field="n")
    return body


@router.post("/v1/chat/completions")
async def chat_completions(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    try:
        body = _parse_body(await request.body())
        user = body.get("user") or request.headers.get("x-synthgate-user")
        if not isinstance(user, str) or not user:
            raise InvalidInput("name the end user in 'user' or the X-Synthgate-User header", field="user")
        model = body.get("model") if isinstance(body.get("model"), str) else None
        secret = credentials.credentials if credentials else None
        limiter: anyio.CapacityLimiter = request.app.state.db_limiter

        def authenticate_and_check() -> tuple[Caller, GenerationContext]:
            # One trip to the thread pool for both: each hop costs a context switch on the hot path.
            caller = authenticate_key(gateway, secret, "generate")
            text = messages_to_text(body["messages"])
            return caller, gateway.service.proxy_check(caller.service, user, text, model=model)

        caller, ctx = await in_db_turn(limiter, authenticate_and_check)
        url, headers, forwarded = _upstream_request(caller, gateway, body, ctx)
        client: httpx.AsyncClient = request.app.state.upstream
        if body.get("stream"):
            return await _stream(gateway, limiter, client, ctx, url, headers, forwarded)
        return await _complete(gateway, limiter, client, ctx, url, headers, forwarded)
    except SynthgateError as exc:
        return _openai_error(exc)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", field="body")
    return body


def _parse_image_body(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        raise InvalidInput("'prompt' must be a non-empty string", field="prompt")
    if body.get("n", 1) not in (1, None):
        raise InvalidInput("only n=1 is supported: each image is labeled and recorded", field="n")
    if body.get("response_format", "b64_json") != "b64_json":
        # A URL would point at the unlabeled original on the model's host.
        raise InvalidInput("only response_format b64_json is supported", field="response_format")
    return body


SPEECH_FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
"""Speech formats the gateway can label (explicit cue and metadata) before delivering."""


def _parse_speech_body(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    if not isinstance(body.get("input"), str) or not body["input"].strip():
        raise InvalidInput("'input' must be a non-empty string", field="input")
    if body.get("stream_format") not in (None, "audio"):
        raise InvalidInput(
            "only whole files are supported: each is labeled and recorded", field="stream_format"
        )
    body.setdefault("response_format", "mp3")
    if body["response_format"] not in SPEECH_FORMATS:
        raise InvalidInput(
            f"response_format must be one of {', '.join(SPEECH_FORMATS)} (formats the gateway labels)",
            field="response_format",
        )
    return body


class _MediaCall:
    """The shape shared by the media endpoints: check the prompt, call the model, label and record
    the file it returns."""

    def __init__(self, request: Request, credentials: HTTPAuthorizationCredentials | None, gateway: Gateway):
        self.request = request
        self.secret = credentials.credentials if credentials else None
        self.gateway = gateway
        self.limiter: anyio.CapacityLimiter = request.app.state.db_limiter

    async def check(
        self, body: dict[str, Any], prompt: str, *, medium: str, operation: str, endpoint: str
    ) -> tuple[GenerationContext, str, dict[str, str], dict[str, Any]]:
        user = body.get("user") or self.request.headers.get("x-synthgate-user")
        if not isinstance(user, str) or not user:
            raise InvalidInput("name the end user in 'user' or the X-Synthgate-User header", field="user")
        model = body.get("model") if isinstance(body.get("model"), str) else None
        gateway = self.gateway

        def authenticate_and_check() -> tuple[Caller, GenerationContext]:
            # One trip to the thread pool for both: each hop costs a context switch on the hot path.
            caller = authenticate_key(gateway, self.secret, "generate")
            ctx = gateway.service.proxy_check(
                caller.service, user, prompt, model=model, medium=medium, operation=operation
            )
            return caller, ctx

        caller, ctx = await in_db_turn(self.limiter, authenticate_and_check)
        url, headers, forwarded = _upstream_request(caller, gateway, body, ctx, endpoint)
        return ctx, url, headers, forwarded

    async def call(self, url: str, headers: dict[str, str], forwarded: dict[str, Any]) -> httpx.Response:
        client: httpx.AsyncClient = self.request.app.state.upstream
        try:
            return await client.post(url, headers=headers, json=forwarded)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream model could not be reached: {type(exc).__name__}") from exc

    async def complete(self, ctx: GenerationContext, data: bytes, medium: str) -> Completed:
        try:
            item = MediaItem.from_bytes(data, limits=MediaLimits.from_settings(self.gateway.settings))
        except SynthgateError as exc:
            raise UpstreamError(f"the upstream file is not usable: {exc.message}") from exc
        if item.medium != medium:
            raise UpstreamError(f"the upstream answered with {item.container}, not {medium}")
        return await in_db_turn(self.limiter, self.gateway.service.proxy_complete, ctx, None, [item])


@router.post("/v1/images/generations")
async def images_generations(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    """Images through the pipeline: the prompt is checked, the picture screened, labeled and recorded."""
    try:
        body = _parse_image_body(await request.body())
        call = _MediaCall(request, credentials, gateway)
        ctx, url, headers, forwarded = await call.check(
            body, body["prompt"], medium="image", operation="image.generate", endpoint="/images/generations"
        )
        forwarded["response_format"] = "b64_json"
        upstream = await call.call(url, headers, forwarded)
        if upstream.status_code >= 400:
            return _upstream_failure(upstream.status_code, upstream.content)
        try:
            answer = upstream.json()
            entry = answer["data"][0]
            data = base64.b64decode(entry["b64_json"], validate=True)
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
            raise UpstreamError("the upstream answer is not an image generation with b64_json") from exc
        done = await call.complete(ctx, data, "image")
        entry["b64_json"] = base64.b64encode(done.media[0].data).decode()
        answer["data"] = [entry]
        answer["synthgate"] = _synthgate_block(ctx, done.labels)
        return JSONResponse(answer, headers=_tag_headers(ctx))
    except SynthgateError as exc:
        return _openai_error(exc)


@router.post("/v1/audio/speech")
async def audio_speech(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    gateway: Gateway = Depends(get_gateway),
) -> Response:
    """Speech through the pipeline: the text is checked, the audio screened, labeled and recorded."""
    try:
        body = _parse_speech_body(await request.body())
        call = _MediaCall(request, credentials, gateway)
        ctx, url, headers, forwarded = await call.check(
            body, body["input"], medium="audio", operation="audio.speech", endpoint="/audio/speech"
        )
        upstream = await call.call(url, headers, forwarded)
        if upstream.status_code >= 400:
            return _upstream_failure(upstream.status_code, upstream.content)
        done = await call.complete(ctx, upstream.content, "audio")
        delivered = done.media[0]
        media_type = SPEECH_FORMATS.get(delivered.container, "application/octet-stream")
        return Response(delivered.data, media_type=media_type, headers=_tag_headers(ctx))
    except SynthgateError as exc:
        return _openai_error(exc)


def _tag_headers(ctx: GenerationContext) -> dict[str, str]:
    # GB-E: the answer's Annex E object (X-AIGC-Label), bound once the complete phase has run.
    headers = {"X-Synthgate-Produce-Id": ctx.produce_id, **context_label_headers(ctx)}
    if ctx.service.filing_number:
        headers["X-Synthgate-Filing-Number"] = ctx.service.filing_number
    return headers


def _synthgate_block(ctx: GenerationContext, labels: dict[str, Any]) -> dict[str, Any]:
    return {
        "produce_id": ctx.produce_id,
        "labels": labels,
        "filing": {"number": ctx.service.filing_number, "link": ctx.service.filing_link},
    }


async def _complete(
    gateway: Gateway,
    limiter: anyio.CapacityLimiter,
    client: httpx.AsyncClient,
    ctx: GenerationContext,
    url: str,
    headers: dict[str, str],
    forwarded: dict[str, Any],
) -> Response:
    try:
        upstream = await client.post(url, headers=headers, json=forwarded)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the upstream model could not be reached: {type(exc).__name__}") from exc
    if upstream.status_code >= 400:
        return _upstream_failure(upstream.status_code, upstream.content)
    try:
        answer = upstream.json()
        message = answer["choices"][0]["message"]
        content = message.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError("the upstream answer is not a chat completion") from exc
    if not isinstance(content, str):
        raise UpstreamError("the upstream answer's content is not text")
    done = await in_db_turn(limiter, gateway.service.proxy_complete, ctx, content)
    message["content"] = done.output or ""
    answer["synthgate"] = _synthgate_block(ctx, done.labels)
    return JSONResponse(answer, headers=_tag_headers(ctx))


def _upstream_failure(status: int, content: bytes) -> Response:
    # Client errors from the model (bad parameters) are the caller's to fix: pass them through.
    # Server errors become 502 so nobody mistakes them for ours.
    if 400 <= status < 500:
        return Response(content, status_code=status, media_type="application/json")
    return _openai_error(UpstreamError(f"the upstream model failed with HTTP {status}"))


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _stream(
    gateway: Gateway,
    limiter: anyio.CapacityLimiter,
    client: httpx.AsyncClient,
    ctx: GenerationContext,
    url: str,
    headers: dict[str, str],
    forwarded: dict[str, Any],
) -> Response:
    request = client.build_request("POST", url, headers=headers, json=forwarded)
    try:
        upstream = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the upstream model could not be reached: {type(exc).__name__}") from exc
    if upstream.status_code >= 400:
        content = await upstream.aread()
        await upstream.aclose()
        return _upstream_failure(upstream.status_code, content)
    guard = StreamGuard(service_detector(ctx), text_label_for(ctx))
    return StreamingResponse(
        _relay(gateway, limiter, upstream, ctx, guard),
        media_type="text/event-stream",
        headers={**_tag_headers(ctx), "Cache-Control": "no-cache"},
    )


async def _relay(
    gateway: Gateway,
    limiter: anyio.CapacityLimiter,
    upstream: httpx.Response,
    ctx: GenerationContext,
    guard: StreamGuard,
) -> AsyncIterator[bytes]:
    template: dict[str, Any] = {
        "id": f"chatcmpl-{ctx.produce_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": ctx.model or "",
    }

    def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
        delta: dict[str, Any] = {} if content is None else {"content": content}
        return _sse({**template, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    finish_reason = "stop"
    opened = False
    try:
        async for line in upstream.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
                choice = event["choices"][0] if event.get("choices") else {}
            except (ValueError, KeyError, IndexError, TypeError):
                continue
            template.update({k: event[k] for k in ("created", "model", "system_fingerprint") if k in event})
            if not opened:
                opened = True
                yield _sse(
                    {
                        **template,
                        "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
                    }
                )
                if guard.opening():
                    yield chunk(guard.opening())
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                try:
                    safe = guard.feed(content)
                except Refused as refusal:
                    await in_db_turn(limiter, gateway.service.refuse, ctx, refusal)
                    yield chunk(None, "content_filter", synthgate={"refusal": refusal.as_dict()})
                    yield b"data: [DONE]\n\n"
                    return
                if safe:
                    yield chunk(safe)
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
    except httpx.HTTPError as exc:
        log.warning("proxy.upstream_stream_broken", produce_id=ctx.produce_id, error=type(exc).__name__)
        yield _sse(
            {
                "error": {
                    "message": "the upstream stream broke; nothing was recorded",
                    "code": "upstream.error",
                }
            }
        )
        return
    finally:
        await upstream.aclose()

    if not opened:
        yield _sse(
            {**template, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        )
        if guard.opening():
            yield chunk(guard.opening())
    try:
        tail = guard.closing()  # the last held-back characters are screened as final here
    except Refused as refusal:
        await in_db_turn(limiter, gateway.service.refuse, ctx, refusal)
        yield chunk(None, "content_filter", synthgate={"refusal": refusal.as_dict()})
        yield b"data: [DONE]\n\n"
        return
    # The record is written before the tail and [DONE]: a client that saw a complete stream
    # has a recorded generation; if recording fails, the stream ends with an error instead.
    ctx.streamed = True
    ctx.labeled_output = guard.label.prefix + guard.text + guard.label.suffix
    try:
        done = await in_db_turn(limiter, gateway.service.proxy_complete, ctx, guard.text)
    except SynthgateError as exc:
        yield _sse({"error": exc.as_dict()})
        return
    if tail:
        yield chunk(tail)
    yield chunk(None, finish_reason, synthgate=_synthgate_block(ctx, done.labels))
    yield b"data: [DONE]\n\n"
