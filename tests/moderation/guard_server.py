"""A stand-in guard model server for tests, run as a real process on loopback.

It speaks the two protocols the remote adapters use:

* ``POST /v1/moderations`` — the OpenAI moderation API: ``{"model", "input"}`` →
  ``{"id", "model", "results": [{"flagged", "categories", "category_scores"}]}``;
* ``POST /v1/chat/completions`` — a guard model behind an OpenAI-compatible chat endpoint. The
  model name picks the reply format: names containing ``qwen`` answer like Qwen3Guard
  (``Safety: Unsafe\\nCategories: Violent``), others like Llama Guard (``unsafe\\nS1``).

Its "model" is a fixed word list (``kill`` → violence / S1, ``nude`` → sexual / S12), judged on
the last message. ``--delay-ms`` slows every answer (timeouts); ``--broken`` answers 200 with a
body in no protocol (protocol errors).

    python -m tests.moderation.guard_server --port 8999 [--delay-ms 1500] [--broken]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

WORDS = {"kill": ("violence", "S1", "Violent"), "nude": ("sexual", "S12", "Sexual Content or Sexual Acts")}
OPENAI_CATEGORIES = ["harassment", "hate", "self-harm", "sexual", "sexual/minors", "violence"]


def _judge(text: str) -> list[tuple[str, str, str]]:
    lowered = text.lower()
    return [labels for word, labels in WORDS.items() if word in lowered]


def create_app(delay_ms: float = 0, broken: bool = False) -> Starlette:
    async def pause() -> None:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)

    async def moderations(request: Request) -> Any:
        await pause()
        body = await request.json()
        if broken:
            return JSONResponse({"unexpected": True})
        if not isinstance(body.get("input"), str):
            return JSONResponse(
                {"error": {"message": "input must be a string", "type": "invalid_request_error"}},
                status_code=400,
            )
        hits = {openai for openai, _, _ in _judge(body["input"])}
        return JSONResponse(
            {
                "id": "modr-test",
                "model": body.get("model", "omni-moderation-latest"),
                "results": [
                    {
                        "flagged": bool(hits),
                        "categories": {c: c in hits for c in OPENAI_CATEGORIES},
                        "category_scores": {c: 0.97 if c in hits else 0.01 for c in OPENAI_CATEGORIES},
                    }
                ],
            }
        )

    async def chat(request: Request) -> Any:
        await pause()
        body = await request.json()
        if broken:
            return JSONResponse({"choices": [{"message": {"content": "I think it is fine?"}}]})
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return JSONResponse({"error": {"message": "messages required"}}, status_code=400)
        model = str(body.get("model") or "llama-guard")
        hits = _judge(str(messages[-1].get("content", "")))
        if "qwen" in model.lower():
            content = (
                "Safety: Unsafe\nCategories: " + ", ".join(q for _, _, q in hits)
                if hits
                else "Safety: Safe\nCategories: None"
            )
        else:
            content = "unsafe\n" + ",".join(s for _, s, _ in hits) if hits else "safe"
        return JSONResponse(
            {
                "id": "chatcmpl-guard",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    async def healthz(request: Request) -> Any:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/v1/moderations", moderations, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_guard_server(delay_ms: float = 0, broken: bool = False) -> Iterator[str]:
    """Start the server as a subprocess; yields its base URL ``http://127.0.0.1:PORT/v1``."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "tests.moderation.guard_server", "--port", str(port)]
    cmd += ["--delay-ms", str(delay_ms)] + (["--broken"] if broken else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"guard server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code
                    == 200
                ):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("guard server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--broken", action="store_true")
    args = parser.parse_args()
    uvicorn.run(create_app(args.delay_ms, args.broken), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
