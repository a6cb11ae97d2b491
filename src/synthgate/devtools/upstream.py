"""A small, fast, deterministic OpenAI-compatible upstream for tests, the demo and benchmarks.

It stands in for a remote model service and speaks the real wire protocol:

* ``POST /v1/chat/completions`` -- a ``chat.completion`` object, or with ``"stream": true`` a
  ``text/event-stream`` of ``chat.completion.chunk`` events (role delta, several content deltas of a few
  words each, a final chunk with ``finish_reason: "stop"``, an optional usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``);
* ``POST /v1/images/generations`` -- an ``images`` answer with one PNG as ``b64_json``: a picture
  drawn from the prompt (a colour field seeded by it, the prompt's words written on it), so the
  same prompt always gives the same image;
* ``POST /v1/audio/speech`` -- the spoken ``input`` as a WAV, FLAC or MP3 file: speech from
  espeak-ng where it is installed, otherwise a tone per character (deterministic either way);
* ``GET /v1/models`` -- a model list;
* ``GET /healthz`` -- ``{"status": "ok", "pid": <server process id>}``.

The reply is deterministic: ``"Echo: " + <content of the last user message>``, or always the fixed text
given as ``reply``. ``delay_ms`` adds a fixed latency (``asyncio.sleep``) to every chat completion.
Invalid input gets a 400 with an OpenAI-style error object
``{"error": {"message", "type", "param", "code"}}``.

The app is a bare ASGI callable (no routing framework) so that it costs as little CPU as possible when
it serves thousands of requests per second next to the gateway under test on the same machine.

Run it::

    python -m synthgate.devtools.upstream --host 127.0.0.1 --port 8901 [--reply TEXT] [--delay-ms N]

or from Python with :func:`run_upstream_process`, which starts it as a real subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DEFAULT_MODEL", "create_app", "main", "run_upstream_process"]

DEFAULT_MODEL: Final = "synthgate-echo"
"""Model name reported when a request names none, and listed by ``GET /v1/models``."""

ENV_REPLY: Final = "SYNTHGATE_UPSTREAM_REPLY"
ENV_DELAY_MS: Final = "SYNTHGATE_UPSTREAM_DELAY_MS"

MAX_BODY_BYTES: Final = 8 * 1024 * 1024
WORDS_PER_CHUNK: Final = 3
SYSTEM_FINGERPRINT: Final = "fp_synthgate_dev"

_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_WORD_SPLIT: Final = re.compile(r"(?<=\s)(?=\S)")


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def _text_of(content: object) -> str:
    """The text of a message ``content``: a string, or the text parts of a content-part array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def _count_tokens(text: str) -> int:
    # Deterministic stand-in for a tokenizer: whitespace-separated words.
    return len(text.split())


def split_into_chunks(text: str, words_per_chunk: int = WORDS_PER_CHUNK) -> list[str]:
    """Split ``text`` into pieces of a few words each; ``"".join(result) == text``."""
    if not text:
        return []
    words = _WORD_SPLIT.split(text)
    return ["".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]


def _parse_request(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest(
            "We could not parse the JSON body of your request. The body must be valid JSON "
            "(with the header Content-Type: application/json)."
        ) from None
    if not isinstance(payload, dict):
        raise _BadRequest("The request body must be a JSON object.")
    if "messages" not in payload:
        raise _BadRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    messages = payload["messages"]
    if not isinstance(messages, list):
        raise _BadRequest(
            "Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type"
        )
    if not messages:
        raise _BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _BadRequest(
                f"Invalid type for 'messages[{index}]': expected an object.",
                f"messages[{index}]",
                "invalid_type",
            )
        if not isinstance(message.get("role"), str):
            raise _BadRequest(
                f"Missing required parameter: 'messages[{index}].role'.",
                f"messages[{index}].role",
                "missing_required_parameter",
            )
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model:
        raise _BadRequest("Invalid type for 'model': expected a non-empty string.", "model", "invalid_type")
    stream = payload.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _BadRequest("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
    return payload


class _UpstreamApp:
    """The ASGI application. Use :func:`create_app`."""

    def __init__(self, reply: str | None, delay_ms: float) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        self.reply = reply
        self.delay_s = delay_ms / 1000.0
        self.started = int(time.time())
        self._health_body = _dumps({"status": "ok", "pid": os.getpid()})
        # Paths with or without the /v1 prefix, as OpenAI clients configured either way send them.
        self._routes: dict[str, tuple[tuple[str, ...], Callable[[Receive, Send], Awaitable[None]]]] = {
            "/chat/completions": (("POST",), self._chat_completions),
            "/images/generations": (("POST",), self._images),
            "/audio/speech": (("POST",), self._speech),
            "/models": (("GET", "HEAD"), self._models),
            "/healthz": (("GET", "HEAD"), self._health),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    # -- HTTP plumbing ---------------------------------------------------------------------------

    @staticmethod
    async def _respond(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        all_headers = [*(headers or _JSON_HEADERS), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(
        self,
        send: Send,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        await self._respond(send, status, _error_body(message, type_, param, code))

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        """The whole request body, or ``None`` if it is larger than :data:`MAX_BODY_BYTES`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        method: str = scope["method"]
        route = self._routes.get(path.removeprefix("/v1"))
        if route is None:
            await self._error(send, 404, f"Invalid URL ({method} {path})", "invalid_request_error")
            return
        methods, handler = route
        if method not in methods:
            await self._error(send, 405, f"Method {method} not allowed on {path}.", "invalid_request_error")
            return
        await handler(receive, send)

    async def _models(self, receive: Receive, send: Send) -> None:
        models = {
            "object": "list",
            "data": [
                {
                    "id": DEFAULT_MODEL,
                    "object": "model",
                    "created": self.started,
                    "owned_by": "synthgate-dev",
                }
            ],
        }
        await self._respond(send, 200, _dumps(models))

    async def _health(self, receive: Receive, send: Send) -> None:
        await self._respond(send, 200, self._health_body)

    # -- images ----------------------------------------------------------------------------------

    async def _images(self, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        if body is None:
            await self._error(send, 413, "Request body too large.", "invalid_request_error")
            return
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise _BadRequest("The request body must be a JSON object.")
            prompt = payload.get("prompt")
            if not isinstance(prompt, str) or not prompt:
                raise _BadRequest("'prompt' must be a non-empty string.", "prompt", "invalid_value")
            width, height = _image_size(payload.get("size", "512x512"))
            if payload.get("n", 1) != 1:
                raise _BadRequest("Only n=1 is supported.", "n", "invalid_value")
            if payload.get("response_format", "b64_json") != "b64_json":
                raise _BadRequest("This upstream returns b64_json only.", "response_format", "invalid_value")
        except json.JSONDecodeError:
            await self._error(send, 400, "The request body is not valid JSON.", "invalid_request_error")
            return
        except _BadRequest as exc:
            await self._error(send, 400, exc.message, "invalid_request_error", exc.param, exc.code)
            return
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        image = await asyncio.to_thread(draw_image, prompt, width, height)
        answer = {"created": int(time.time()), "data": [{"b64_json": image, "revised_prompt": prompt}]}
        await self._respond(send, 200, _dumps(answer))

    # -- speech ----------------------------------------------------------------------------------

    async def _speech(self, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        if body is None:
            await self._error(send, 413, "Request body too large.", "invalid_request_error")
            return
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise _BadRequest("The request body must be a JSON object.")
            text = payload.get("input")
            if not isinstance(text, str) or not text.strip():
                raise _BadRequest("'input' must be a non-empty string.", "input", "invalid_value")
            if len(text) > 4096:
                raise _BadRequest("'input' is longer than 4096 characters.", "input", "invalid_value")
            audio_format = payload.get("response_format", "mp3")
            if audio_format not in SPEECH_FORMATS:
                raise _BadRequest(
                    f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}.",
                    "response_format",
                    "invalid_value",
                )
        except json.JSONDecodeError:
            await self._error(send, 400, "The request body is not valid JSON.", "invalid_request_error")
            return
        except _BadRequest as exc:
            await self._error(send, 400, exc.message, "invalid_request_error", exc.param, exc.code)
            return
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        audio = await asyncio.to_thread(speak, text, audio_format)
        await self._respond(send, 200, audio, [(b"content-type", SPEECH_FORMATS[audio_format].encode())])

    # -- chat completions ------------------------------------------------------------------------

    def _reply_for(self, messages: Sequence[dict[str, Any]]) -> str:
        if self.reply is not None:
            return self.reply
        for message in reversed(messages):
            if message.get("role") == "user":
                return "Echo: " + _text_of(message.get("content"))
        return "Echo: "

    async def _chat_completions(self, receive: Receive, send: Send) -> None:
        body = await self._read_body(receive)
        if body is None:
            await self._error(send, 413, "Request body too large.", "invalid_request_error")
            return
        try:
            payload = _parse_request(body)
        except _BadRequest as exc:
            await self._error(send, 400, exc.message, "invalid_request_error", exc.param, exc.code)
            return

        messages: list[dict[str, Any]] = payload["messages"]
        model: str = payload.get("model", DEFAULT_MODEL)
        text = self._reply_for(messages)
        prompt_tokens = sum(_count_tokens(_text_of(m.get("content"))) for m in messages)
        completion_tokens = _count_tokens(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())

        if self.delay_s:
            await asyncio.sleep(self.delay_s)

        if not payload.get("stream"):
            completion = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            await self._respond(send, 200, _dumps(completion))
            return

        stream_options = payload.get("stream_options")
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True

        def event(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            chunk: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                chunk["usage"] = None
            return b"data: " + _dumps(chunk) + b"\n\n"

        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})

        async def emit(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await emit(event({"role": "assistant", "content": "", "refusal": None}, None))
        for piece in split_into_chunks(text):
            await emit(event({"content": piece}, None))
        await emit(event({}, "stop"))
        if include_usage:
            usage_chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [],
                "usage": usage,
            }
            await emit(b"data: " + _dumps(usage_chunk) + b"\n\n")
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def _image_size(value: object) -> tuple[int, int]:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2,4}x\d{2,4}", value):
        raise _BadRequest("'size' must look like 1024x1024.", "size", "invalid_value")
    width, height = (int(part) for part in value.split("x"))
    if not (64 <= width <= 2048 and 64 <= height <= 2048):
        raise _BadRequest("'size' must be between 64x64 and 2048x2048.", "size", "invalid_value")
    return width, height


SPEECH_FORMATS: Final = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
SPEECH_RATE: Final = 22050


def speak(text: str, audio_format: str) -> bytes:
    """``text`` as audio in ``audio_format``: espeak-ng's speech when it is installed, else tones."""
    import io
    import shutil

    import numpy as np
    import soundfile

    samples: Any = None
    rate = SPEECH_RATE
    espeak = shutil.which("espeak-ng")
    if espeak:
        done = subprocess.run(
            [espeak, "--stdout", "-v", "cmn" if _has_cjk(text) else "en", text],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0 and done.stdout:
            samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32")
    if samples is None:
        # A tone per character between 200 and 800 Hz, 80 ms each, faded in and out.
        pieces = []
        t = np.arange(int(0.08 * rate)) / rate
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
        for char in text[:400]:
            frequency = 200 + (ord(char) * 37) % 600
            pieces.append(0.3 * np.sin(2 * np.pi * frequency * t) * fade)
        samples = np.concatenate(pieces).astype("float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=audio_format.upper())
    return buffer.getvalue()


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


def draw_image(prompt: str, width: int, height: int) -> str:
    """A PNG (base64) that depends only on the prompt and size: gradient, shapes, the prompt's text."""
    import base64
    import hashlib
    import io
    import random

    from PIL import Image, ImageDraw

    seed = hashlib.sha256(prompt.encode()).digest()
    rng = random.Random(seed)
    top = tuple(rng.randrange(40, 220) for _ in range(3))
    bottom = tuple(rng.randrange(40, 220) for _ in range(3))
    column = Image.linear_gradient("L").resize((1, height))
    image = Image.composite(
        Image.new("RGB", (width, height), bottom),
        Image.new("RGB", (width, height), top),
        column.resize((width, height)),
    )
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(max(width, height) // 20, max(width, height) // 5)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    draw.text((width // 20, height // 20), prompt[:80], fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def create_app(reply: str | None = None, delay_ms: float = 0) -> ASGIApp:
    """The upstream as an ASGI app.

    ``reply``: if given, every completion answers exactly this text; otherwise ``"Echo: "`` followed by
    the content of the last user message. ``delay_ms``: fixed latency added to every chat completion.
    """
    return _UpstreamApp(reply, float(delay_ms))


# -- command line --------------------------------------------------------------------------------


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the upstream with uvicorn (uvloop + httptools, no access log, log level warning)."""
    parser = argparse.ArgumentParser(
        prog="python -m synthgate.devtools.upstream",
        description="Deterministic OpenAI-compatible upstream for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8901, help="port to bind (default 8901)")
    parser.add_argument(
        "--reply",
        default=os.environ.get(ENV_REPLY),
        help=f"always answer this text (default: echo the last user message; env {ENV_REPLY})",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=_env_float(ENV_DELAY_MS, 0.0),
        help=f"fixed latency added to each chat completion, in ms (env {ENV_DELAY_MS})",
    )
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must be >= 0")

    import uvicorn

    have_uvloop = importlib.util.find_spec("uvloop") is not None
    have_httptools = importlib.util.find_spec("httptools") is not None
    uvicorn.run(
        create_app(reply=args.reply, delay_ms=args.delay_ms),
        host=args.host,
        port=args.port,
        loop="uvloop" if have_uvloop else "asyncio",
        http="httptools" if have_httptools else "h11",
        access_log=False,
        log_level="warning",
        server_header=False,
        # Benchmark clients and gateways keep pooled connections open between phases.
        timeout_keep_alive=75,
    )


# -- subprocess helper ---------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _src_dir() -> Path:
    # .../src/synthgate/devtools/upstream.py -> .../src
    return Path(__file__).resolve().parents[2]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The function's arguments, not the caller's environment, decide the child's behaviour.
    env.pop(ENV_REPLY, None)
    env.pop(ENV_DELAY_MS, None)
    src = str(_src_dir())
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = src if not existing else os.pathsep.join([src, existing])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def run_upstream_process(
    port: int | None = None,
    reply: str | None = None,
    delay_ms: float = 0,
    *,
    startup_timeout: float = 20.0,
) -> Iterator[str]:
    """Run the upstream as a real subprocess on 127.0.0.1 and yield its base URL ``http://127.0.0.1:PORT/v1``.

    Waits until ``GET /healthz`` answers (at most ``startup_timeout`` seconds); raises ``RuntimeError``
    with the process's stderr if it exits first, ``TimeoutError`` if it never becomes healthy. The
    process is terminated when the ``with`` block ends.
    """
    import httpx

    chosen_port = port if port is not None else _free_loopback_port()
    cmd = [
        sys.executable,
        "-m",
        "synthgate.devtools.upstream",
        "--host",
        "127.0.0.1",
        "--port",
        str(chosen_port),
    ]
    if reply is not None:
        cmd += ["--reply", reply]
    if delay_ms:
        cmd += ["--delay-ms", str(delay_ms)]

    with tempfile.TemporaryFile() as stderr_file:

        def stderr_text() -> str:
            stderr_file.flush()
            stderr_file.seek(0)
            return stderr_file.read().decode("utf-8", "replace").strip()

        proc = subprocess.Popen(
            cmd, env=_child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file
        )
        try:
            health_url = f"http://127.0.0.1:{chosen_port}/healthz"
            deadline = time.monotonic() + startup_timeout
            with httpx.Client(trust_env=False, timeout=httpx.Timeout(1.0)) as client:
                while True:
                    code = proc.poll()
                    if code is not None:
                        raise RuntimeError(
                            f"upstream process exited with code {code} before becoming healthy "
                            f"(command: {' '.join(cmd)}); stderr:\n{stderr_text() or '<empty>'}"
                        )
                    try:
                        health = client.get(health_url)
                        info = health.json() if health.status_code == 200 else None
                        # The pid check makes sure we are not talking to another server on that port.
                        if isinstance(info, dict) and info.get("pid") == proc.pid:
                            break
                    except (httpx.HTTPError, ValueError):
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"upstream on port {chosen_port} did not answer {health_url} within "
                            f"{startup_timeout:.0f} s; stderr:\n{stderr_text() or '<empty>'}"
                        )
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{chosen_port}/v1"
        finally:
            _stop(proc)


if __name__ == "__main__":
    main()
