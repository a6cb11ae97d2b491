"""Identity verifiers (DSP-9) and SMS senders: small protocols with registries.

The built-ins that need a remote service (a real-name check, the national online identity
service, an SMS gateway) speak plain JSON over HTTP, so a provider points them at its vendor's
adapter; the ``checksum`` verifiers only check the number's format and say so in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog

from synthgate.config import Settings
from synthgate.errors import InvalidInput
from synthgate.registry import Registry

log = structlog.get_logger("synthgate.identity")


@dataclass(frozen=True)
class Claim:
    method: str
    """``id_number``, ``uscc`` or ``national_identity``."""
    subject: str
    name: str | None = None


@dataclass(frozen=True)
class Outcome:
    verified: bool
    verifier: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class IdentityVerifier(Protocol):
    name: str

    def verify(self, claim: Claim) -> Outcome: ...


class SmsSender(Protocol):
    name: str

    def send(self, phone: str, message: str) -> None: ...


verifiers: Registry[IdentityVerifier] = Registry("identity_verifiers")
sms_senders: Registry[SmsSender] = Registry("sms_senders")


@verifiers.register("checksum")
class ChecksumOnlyVerifier:
    """Accepts a well-formed number. For development: the record says ``checksum-only``."""

    name = "checksum-only"

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        del settings, url

    def verify(self, claim: Claim) -> Outcome:
        log.warning("identity verified by checksum only; configure a real verifier", method=claim.method)
        return Outcome(True, self.name, "format and check character valid; identity not confirmed")


@verifiers.register("http")
class HttpVerifier:
    """POSTs ``{"method", "subject", "name"}`` as JSON; expects ``{"verified": bool, "detail": str}``."""

    name = "http"

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        if not url:
            raise InvalidInput("the http verifier needs a URL (SYNTHGATE_*_VERIFIER_URL)")
        self.url = url
        self.timeout = 10.0

    def verify(self, claim: Claim) -> Outcome:
        try:
            response = httpx.post(
                self.url,
                json={"method": claim.method, "subject": claim.subject, "name": claim.name},
                timeout=self.timeout,
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Outcome(False, self.name, f"verification service unavailable: {type(exc).__name__}")
        return Outcome(bool(body.get("verified")), self.name, str(body.get("detail", "")))


@verifiers.register("unconfigured")
class UnconfiguredVerifier:
    name = "unconfigured"

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        del settings, url

    def verify(self, claim: Claim) -> Outcome:
        return Outcome(False, self.name, f"no verifier is configured for {claim.method}")


@sms_senders.register("log")
class LogSmsSender:
    """Writes the message to the structured log (development default)."""

    name = "log"

    def __init__(self, settings: Settings) -> None:
        del settings

    def send(self, phone: str, message: str) -> None:
        log.info("sms.sent", to=phone, message=message)


@sms_senders.register("webhook")
class WebhookSmsSender:
    """POSTs ``{"to": "+86…", "message": "…"}`` as JSON to ``SYNTHGATE_SMS_WEBHOOK_URL``."""

    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        if not settings.sms_webhook_url:
            raise InvalidInput("the webhook SMS sender needs SYNTHGATE_SMS_WEBHOOK_URL")
        self.url = settings.sms_webhook_url

    def send(self, phone: str, message: str) -> None:
        response = httpx.post(self.url, json={"to": phone, "message": message}, timeout=10.0)
        response.raise_for_status()


def verifier_for(settings: Settings, method: str) -> IdentityVerifier:
    name, url = {
        "id_number": (settings.id_verifier, settings.id_verifier_url),
        "uscc": (settings.uscc_verifier, settings.uscc_verifier_url),
        "national_identity": (settings.national_identity_verifier, settings.national_identity_url),
    }[method]
    return verifiers.create(name, settings, url)
