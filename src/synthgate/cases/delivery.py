"""How notices and reports leave the building: notifier and authority-transport plug-ins.

Notifiers (entry-point group ``synthgate.case_notifiers``): ``log`` (development), ``smtp`` (an
e-mail through the configured relay) and ``webhook`` (a signed JSON POST to the provider, which
reaches its own users). Authority transports (``synthgate.authority_transports``): ``files``
(the default: a directory per report, for whatever channel the operator uses to hand it over) and
``http`` (a JSON POST to the authority's endpoint). Each returns a short receipt or raises
:class:`DeliveryError`; the outbox keeps the status and retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog

from synthgate.config import Settings
from synthgate.registry import Registry

log = structlog.get_logger("synthgate.cases")


class DeliveryError(Exception):
    pass


@dataclass(frozen=True)
class Message:
    recipient: str
    """``complainant`` or ``user``."""
    recipient_ref: str
    address: str | None
    subject: str
    body: str
    data: dict[str, Any]


class Notifier(Protocol):
    name: str

    def send(self, message: Message) -> str: ...


case_notifiers: Registry[Any] = Registry("case_notifiers")


@case_notifiers.register("log")
class LogNotifier:
    """Writes the notice to the log only: for development, or where no channel is configured."""

    name = "log"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> str:
        log.info(
            "cases.notice", recipient=message.recipient, ref=message.recipient_ref, subject=message.subject
        )
        return "logged"


@case_notifiers.register("smtp")
class SmtpNotifier:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> str:
        if not message.address or "@" not in message.address:
            raise DeliveryError("no e-mail address to send to")
        email = EmailMessage()
        email["From"] = self.settings.smtp_from
        email["To"] = message.address
        email["Subject"] = message.subject
        email.set_content(message.body)
        s = self.settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=15) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username and s.smtp_password:
                    smtp.login(s.smtp_username, s.smtp_password)
                refused = smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP: {exc}") from exc
        if refused:
            raise DeliveryError(f"SMTP refused {sorted(refused)}")
        return f"smtp:{s.smtp_host}:{s.smtp_port}"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@case_notifiers.register("webhook")
class WebhookNotifier:
    """POSTs the notice as JSON, signed (``X-Synthgate-Signature``) with a key the provider is given."""

    name = "webhook"

    def __init__(self, settings: Settings, secret: bytes = b"") -> None:
        self.settings = settings
        self.secret = secret

    def send(self, message: Message) -> str:
        url = self.settings.cases_webhook_url
        if not url:
            raise DeliveryError("cases_webhook_url is not configured")
        body = json.dumps(
            {
                "event": "case.notice",
                "recipient": message.recipient,
                "recipient_ref": message.recipient_ref,
                "address": message.address,
                "subject": message.subject,
                "body": message.body,
                **message.data,
            },
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", "X-Synthgate-Signature": signature(self.secret, body)}
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=15)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(f"webhook answered {response.status_code}")
        return f"webhook:{response.status_code}"


class AuthorityTransport(Protocol):
    name: str

    def deliver(self, report_id: str, report: dict[str, Any], bundle: str) -> str: ...


authority_transports: Registry[Any] = Registry("authority_transports")


@authority_transports.register("files")
class FilesTransport:
    """Writes ``<dir>/<report id>/report.json`` and ``bundle.jsonl``; the directory is the receipt."""

    name = "files"

    def __init__(self, settings: Settings) -> None:
        self.root = settings.authority_dir or settings.data_dir / "authority-outbox"

    def deliver(self, report_id: str, report: dict[str, Any], bundle: str) -> str:
        target = Path(self.root) / report_id
        try:
            target.mkdir(parents=True, exist_ok=True)
            for name, text in (
                ("bundle.jsonl", bundle),
                ("report.json", json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True)),
            ):
                # Written beside, then renamed: a reader never sees half a file.
                partial = target / f".{name}.partial"
                partial.write_text(text, encoding="utf-8")
                os.replace(partial, target / name)
        except OSError as exc:
            raise DeliveryError(f"files: {exc}") from exc
        return str(target)


@authority_transports.register("http")
class HttpTransport:
    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.url = settings.authority_url

    def deliver(self, report_id: str, report: dict[str, Any], bundle: str) -> str:
        if not self.url:
            raise DeliveryError("authority_url is not configured")
        try:
            response = httpx.post(
                self.url, json={"id": report_id, "report": report, "bundle": bundle}, timeout=30
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"http: {exc}") from exc
        if response.status_code >= 300:
            raise DeliveryError(f"the authority endpoint answered {response.status_code}")
        return response.headers.get("location") or f"http:{response.status_code}"
