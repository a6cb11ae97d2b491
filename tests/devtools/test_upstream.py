"""The fake OpenAI-compatible upstream, started as a real subprocess and spoken to over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from synthgate.devtools.upstream import DEFAULT_MODEL, run_upstream_process, split_into_chunks


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with run_upstream_process() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as c:
        yield c


def _chat(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": text},
        ],
        **extra,
    }


def _parse_sse(body: str) -> list[str]:
    """The ``data:`` payloads of a server-sent-event stream, in order (parsed by hand, per the SSE spec)."""
    payloads: list[str] = []
    for event in body.replace("\r\n", "\n").split("\n\n"):
        data_lines = [
            line[len("data:") :].lstrip(" ") for line in event.split("\n") if line.startswith("data:")
        ]
        if data_lines:
            payloads.append("\n".join(data_lines))
    return payloads


def test_base_url_and_health(upstream: str, client: httpx.Client) -> None:
    assert upstream.startswith("http://127.0.0.1:")
    assert upstream.endswith("/v1")
    health = client.get(upstream.removesuffix("/v1") + "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert isinstance(health.json()["pid"], int)


def test_models(upstream: str, client: httpx.Client) -> None:
    resp = client.get(f"{upstream}/models")
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    assert body["data"][0]["id"] == DEFAULT_MODEL
    assert body["data"][0]["object"] == "model"


def test_non_streaming_completion(upstream: str, client: httpx.Client) -> None:
    resp = client.post(f"{upstream}/chat/completions", json=_chat("tell me about the weather"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "test-model"
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Echo: tell me about the weather"
    usage = body["usage"]
    assert usage["completion_tokens"] == 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    again = client.post(f"{upstream}/chat/completions", json=_chat("tell me about the weather")).json()
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"]
    assert again["id"] != body["id"]


def test_content_parts_are_echoed(upstream: str, client: httpx.Client) -> None:
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "part one"}]}],
    }
    body = client.post(f"{upstream}/chat/completions", json=payload).json()
    assert body["choices"][0]["message"]["content"] == "Echo: part one"


def test_streaming_completion(upstream: str, client: httpx.Client) -> None:
    text = "please write one two three four five six seven eight nine ten"
    with client.stream("POST", f"{upstream}/chat/completions", json=_chat(text, stream=True)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read().decode("utf-8")

    payloads = _parse_sse(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["model"] == "test-model"
        assert len(c["choices"]) == 1

    first, *middle, last = chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["choices"][0]["finish_reason"] is None
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["choices"][0]["delta"] == {}
    assert len(middle) >= 3, "content should arrive in several chunks"
    pieces = [c["choices"][0]["delta"]["content"] for c in middle]
    assert all(c["choices"][0]["finish_reason"] is None for c in middle)
    assert all(1 <= len(p.split()) <= 3 for p in pieces)
    assert "".join(pieces) == "Echo: " + text


def test_streaming_include_usage(upstream: str, client: httpx.Client) -> None:
    payload = _chat("count me", stream=True, stream_options={"include_usage": True})
    resp = client.post(f"{upstream}/chat/completions", json=payload)
    payloads = _parse_sse(resp.text)
    assert payloads[-1] == "[DONE]"
    usage_chunk = json.loads(payloads[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert json.loads(payloads[-3])["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, None),
        (b"[1, 2]", None, None),
        (json.dumps({"model": "m"}).encode(), "messages", "missing_required_parameter"),
        (json.dumps({"model": "m", "messages": "hi"}).encode(), "messages", "invalid_type"),
        (json.dumps({"model": "m", "messages": []}).encode(), "messages", "empty_array"),
        (json.dumps({"model": "m", "messages": [{"content": "x"}]}).encode(), "messages[0].role", None),
    ],
)
def test_bad_input_is_400_with_openai_error(
    upstream: str, client: httpx.Client, content: bytes, param: str | None, code: str | None
) -> None:
    resp = client.post(
        f"{upstream}/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_unknown_path_is_404(upstream: str, client: httpx.Client) -> None:
    resp = client.get(f"{upstream}/nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_fixed_reply_and_delay() -> None:
    with (
        run_upstream_process(reply="Fixed answer here.", delay_ms=50) as base_url,
        httpx.Client(trust_env=False, timeout=10.0) as c,
    ):
        resp = c.post(f"{base_url}/chat/completions", json=_chat("ignored"))
        assert resp.status_code == 200
        assert resp.json()["choices"][0]["message"]["content"] == "Fixed answer here."
        assert resp.elapsed.total_seconds() >= 0.045
        streamed = _parse_sse(c.post(f"{base_url}/chat/completions", json=_chat("ignored", stream=True)).text)
        content = "".join(json.loads(p)["choices"][0]["delta"].get("content", "") for p in streamed[:-1])
        assert content == "Fixed answer here."


def test_process_that_dies_reports_stderr() -> None:
    with run_upstream_process() as base_url:
        port = int(base_url.removeprefix("http://127.0.0.1:").removesuffix("/v1"))
        # The port is taken, so a second upstream on it must fail fast with uvicorn's error.
        with pytest.raises(RuntimeError, match="exited with code"), run_upstream_process(port=port):
            pass


def test_split_into_chunks_round_trips() -> None:
    for text in ["", "one", "  lead and trail  ", "a b c d e f g", "multi\nline text\there"]:
        assert "".join(split_into_chunks(text)) == text
    assert split_into_chunks("a b c d e f g") == ["a b c ", "d e f ", "g"]
