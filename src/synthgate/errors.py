"""Domain errors: each carries a machine-readable code, a human message and the HTTP status it maps to.

Services raise these; routers never build error responses by hand.
"""

from __future__ import annotations

from typing import Any


class SynthgateError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(SynthgateError):
    status_code = 422
    code = "invalid"


class NotFound(SynthgateError):
    status_code = 404
    code = "not_found"


class Conflict(SynthgateError):
    status_code = 409
    code = "conflict"


class Unauthorized(SynthgateError):
    status_code = 401
    code = "unauthorized"


class Forbidden(SynthgateError):
    status_code = 403
    code = "forbidden"


class RateLimited(SynthgateError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class Refused(SynthgateError):
    """A pipeline refusal: the reason code, the clause or policy behind it, a human message."""

    status_code = 403

    def __init__(self, reason: str, clause: str, message: str, *, stage: str = "", **details: Any) -> None:
        super().__init__(message, code=reason, **details)
        self.reason = reason
        self.clause = clause
        self.stage = stage

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "clause": self.clause, "message": self.message, **self.details}
