"""Term-list guardrail for the LiteLLM proxy, the LiteLLM counterpart of synthgate's term screening.

Loaded by the LiteLLM proxy from ``config.yaml`` (``guardrail: term_guardrail.TermListGuardrail``) and run in
its ``pre_call`` (the prompt, before the upstream call) and ``post_call`` (the answer, after it) hooks through
LiteLLM's unified ``apply_guardrail`` interface. It runs inside ``.venv-bench``, never in the project venv.

The blocked terms come from the file named by ``BENCH_BLOCKED_TERMS_FILE`` (one term per line, written by
``bench/gateway_overhead.py`` from the same list that is given to synthgate). Matching is case-insensitive
substring matching over all texts LiteLLM extracts, done with one precompiled regular expression.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from fastapi import HTTPException
from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.utils import GenericGuardrailAPIInputs

TERMS_ENV = "BENCH_BLOCKED_TERMS_FILE"


def _load_terms() -> list[str]:
    path = os.environ.get(TERMS_ENV)
    if not path:
        raise RuntimeError(f"{TERMS_ENV} is not set; it must name a file with one blocked term per line")
    terms = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [t for t in terms if t and not t.startswith("#")]


class TermListGuardrail(CustomGuardrail):
    """Blocks a request whose prompt, or a response whose answer, contains a blocked term."""

    def __init__(self, **kwargs: Any) -> None:
        terms = _load_terms()
        # Longest first so the reported match is the most specific one.
        alternation = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
        self.terms = terms
        self.pattern: re.Pattern[str] = re.compile(alternation, re.IGNORECASE)
        super().__init__(**kwargs)

    async def apply_guardrail(
        self,
        inputs: GenericGuardrailAPIInputs,
        request_data: dict,
        input_type: Literal["request", "response"],
        logging_obj: Any = None,
    ) -> GenericGuardrailAPIInputs:
        for text in inputs.get("texts", []):
            match = self.pattern.search(text)
            if match is not None:
                where = "prompt" if input_type == "request" else "answer"
                raise HTTPException(
                    status_code=400,
                    detail={"error": f"blocked by term list: the {where} contains a blocked term"},
                )
        return inputs
