"""Remote guard models: a moderation model served elsewhere, spoken to over its real protocol.

Two adapters:

* :class:`OpenAIModerationDetector` — the OpenAI moderation API shape: ``POST {base}/moderations``
  with ``{"model", "input"}``, answered by ``{"results": [{"flagged", "categories",
  "category_scores"}]}``.
* :class:`ChatGuardDetector` — a guard model (Llama Guard 3/4, Qwen3Guard) behind an
  OpenAI-compatible ``POST {base}/chat/completions``. The text goes in as the user turn (input
  stage) or as the assistant turn after the prompt (output stage), and the reply is parsed in
  either family's format: Llama Guard's ``safe`` / ``unsafe\\nS1,S10`` and Qwen3Guard's
  ``Safety: Unsafe\\nCategories: Violent``.

Categories map to TC-A codes (configurable with ``categories={...}``). Both adapters raise on
transport errors and malformed answers; the detector runner turns that into the detector's
fail-open / fail-closed outcome, never a silent pass.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from synthgate.moderation.findings import Finding
from synthgate.moderation.policy import Stage


class GuardProtocolError(RuntimeError):
    """The remote answered, but not in the protocol it is configured for."""


OPENAI_CATEGORIES: dict[str, str] = {
    "sexual": "A.1.6",
    "sexual/minors": "A.1.6",
    "hate": "A.1.4",
    "hate/threatening": "A.1.4",
    "harassment": "A.4.4",
    "harassment/threatening": "A.1.5",
    "self-harm": "A.4.1",
    "self-harm/intent": "A.4.1",
    "self-harm/instructions": "A.4.1",
    "violence": "A.1.5",
    "violence/graphic": "A.1.5",
    "illicit": "A.1.8",
    "illicit/violent": "A.1.5",
}

LLAMA_GUARD_CATEGORIES: dict[str, str] = {
    "S1": "A.1.5",  # violent crimes
    "S2": "A.1.8",  # non-violent crimes
    "S3": "A.1.6",  # sex-related crimes
    "S4": "A.1.6",  # child sexual exploitation
    "S5": "A.4.3",  # defamation
    "S6": "A.5.2",  # specialized advice
    "S7": "A.4.5",  # privacy
    "S8": "A.3.1",  # intellectual property
    "S9": "A.1.5",  # indiscriminate weapons
    "S10": "A.1.4",  # hate
    "S11": "A.4.1",  # suicide and self-harm
    "S12": "A.1.6",  # sexual content
    "S13": "A.1.7",  # elections
    "S14": "A.1.8",  # code interpreter abuse
}

QWEN_GUARD_CATEGORIES: dict[str, str] = {
    "violent": "A.1.5",
    "non-violent illegal acts": "A.1.8",
    "sexual content or sexual acts": "A.1.6",
    "pii": "A.4.6",
    "suicide & self-harm": "A.4.1",
    "unethical acts": "A.3.2",
    "politically sensitive topics": "A.1.1",
    "copyright violation": "A.3.1",
    "jailbreak": "prompt-injection",
}

_UNMAPPED = "A.1.8"
"""A category the mapping does not know is still a finding: other prohibited content."""


def _client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


class _Remote:
    name = ""
    version = ""

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api_key: str = "",
        timeout: float = 5.0,
        categories: dict[str, str] | None = None,
        **_: Any,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{self.name}: url must be http(s), got {url!r}")
        self.url = url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = float(timeout)
        self.version = f"{self.name}:{model or 'default'}@{self.url}"
        self.categories = dict(categories or {})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with _client(self.timeout) as client:
            response = client.post(f"{self.url}{path}", json=body, headers=headers)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise GuardProtocolError(f"{self.name}: the answer is not a JSON object")
        return data


class OpenAIModerationDetector(_Remote):
    """The OpenAI moderation API shape (``/moderations``)."""

    name = "openai-moderation"
    THRESHOLD = 0.5

    def __init__(self, url: str, *, threshold: float = THRESHOLD, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.threshold = float(threshold)
        self.mapping = {**OPENAI_CATEGORIES, **self.categories}

    def scan_text(self, text: str, stage: Stage) -> list[Finding]:
        body: dict[str, Any] = {"input": text}
        if self.model:
            body["model"] = self.model
        data = self._post("/moderations", body)
        results = data.get("results")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise GuardProtocolError(f"{self.name}: no results in the answer")
        result = results[0]
        flags = result.get("categories") or {}
        scores = result.get("category_scores") or {}
        if not isinstance(flags, dict) or not isinstance(scores, dict):
            raise GuardProtocolError(f"{self.name}: categories are not objects")
        findings = []
        for name in sorted(set(flags) | set(scores)):
            score = float(scores.get(name) or 0.0)
            if not flags.get(name) and score < self.threshold:
                continue
            findings.append(
                Finding(
                    detector=self.name,
                    category=self.mapping.get(name, _UNMAPPED),
                    score=max(0.0, min(1.0, score if score else 1.0)),
                    evidence=f"{name} {score:.3f}",
                    rule=f"openai.{name}",
                    variant="remote",
                )
            )
        return findings


_LLAMA_CODES = re.compile(r"\bS(\d{1,2})\b")
_QWEN_SAFETY = re.compile(r"Safety:\s*(Safe|Unsafe|Controversial)", re.IGNORECASE)
_QWEN_CATEGORIES = re.compile(r"Categories:\s*(.+)", re.IGNORECASE)


def parse_guard_reply(content: str) -> tuple[str, list[str]]:
    """(``safe`` | ``unsafe`` | ``controversial``, categories as the model named them)."""
    text = content.strip()
    qwen = _QWEN_SAFETY.search(text)
    if qwen:
        verdict = qwen.group(1).lower()
        found = _QWEN_CATEGORIES.search(text)
        names = [c.strip() for c in found.group(1).split(",")] if found else []
        return verdict, [n for n in names if n and n.lower() != "none"]
    first, _, rest = text.partition("\n")
    head = first.strip().lower()
    if head == "safe":
        return "safe", []
    if head == "unsafe":
        return "unsafe", [f"S{n}" for n in _LLAMA_CODES.findall(rest or first)]
    raise GuardProtocolError(f"unrecognised guard answer {text[:80]!r}")


class ChatGuardDetector(_Remote):
    """Llama Guard / Qwen3Guard behind an OpenAI-compatible chat completions endpoint."""

    name = "chat-guard"
    CONTROVERSIAL_SCORE = 0.5

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.mapping = {
            **LLAMA_GUARD_CATEGORIES,
            **QWEN_GUARD_CATEGORIES,
            **{k.lower(): v for k, v in self.categories.items()},
            **self.categories,
        }

    def scan_text(self, text: str, stage: Stage, *, prompt: str = "") -> list[Finding]:
        messages: list[dict[str, str]]
        if stage == "output":
            # The guard judges the last turn: the answer, in the context of what was asked.
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}]
        else:
            messages = [{"role": "user", "content": text}]
        body: dict[str, Any] = {"messages": messages, "temperature": 0, "max_tokens": 32, "stream": False}
        if self.model:
            body["model"] = self.model
        data = self._post("/chat/completions", body)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise GuardProtocolError(f"{self.name}: no choices[0].message.content") from exc
        if not isinstance(content, str):
            raise GuardProtocolError(f"{self.name}: the message content is not text")
        verdict, names = parse_guard_reply(content)
        if verdict == "safe":
            return []
        score = 1.0 if verdict == "unsafe" else self.CONTROVERSIAL_SCORE
        findings = [
            Finding(
                detector=self.name,
                category=self.mapping.get(name, self.mapping.get(name.lower(), _UNMAPPED)),
                score=score,
                evidence=f"{verdict}: {name}",
                rule=f"guard.{name}",
                variant="remote",
            )
            for name in names
        ]
        if not findings:  # "unsafe" with no category is still unsafe
            findings.append(Finding(self.name, _UNMAPPED, score, None, verdict, "guard.unsafe", "remote"))
        return findings
