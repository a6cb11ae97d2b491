"""The Python entry point: ``from synthgate import Gateway``.

One ``Gateway`` per process holds the settings, the database, the key store and the pipeline;
the web app is built around the same object, so the library and the HTTP API run one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synthgate.config import Settings, get_settings
from synthgate.db import Database
from synthgate.gateway.pipeline import Stage
from synthgate.gateway.service import CheckResult, Completed, GatewayService
from synthgate.governance import service as governance
from synthgate.governance.models import Service
from synthgate.identity.verifiers import SmsSender, sms_senders
from synthgate.keys import KeyStore
from synthgate.media import MediaItem, MediaLimits


def messages_to_text(messages: Sequence[Any]) -> str:
    """The text a chat request asks about: every message's text content, in order."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return "\n".join(parts)


class Gateway:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pipeline: list[Stage] | None = None,
        sms_sender: SmsSender | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.db = Database(self.settings)
        self.keys = KeyStore(self.settings)
        self.service = GatewayService(self.settings, self.db, self.keys, pipeline)
        self.sms_sender = sms_sender or sms_senders.create(self.settings.sms_sender, self.settings)

    def _service(self, slug: str) -> Service:
        with self.db.session() as session:
            service = governance.get_service(session, slug)
            session.expunge(service)
            return service

    def check(
        self,
        service: str,
        user: str,
        *,
        prompt: str | None = None,
        messages: Sequence[Any] | None = None,
        model: str | None = None,
        medium: str = "text",
        operation: str = "generate",
        media: Sequence[bytes | MediaItem] = (),
        without_explicit_label: bool = False,
    ) -> CheckResult:
        """Before the model runs: identity, rules, input screening, consent. Raises ``Refused``.

        ``media`` are input files (bytes, or ``MediaItem`` to give each a role such as ``source``).
        """
        text = prompt if prompt is not None else messages_to_text(messages or [])
        return self.service.check(
            self._service(service),
            user,
            text,
            model=model,
            medium=medium,
            operation=operation,
            media=self._items(media),
            without_explicit_label=without_explicit_label,
        )

    def complete(
        self,
        service: str,
        ticket_id: str,
        output: str | None = None,
        *,
        media: Sequence[bytes | MediaItem] = (),
    ) -> Completed:
        """After the model ran: output screening, labels and the record. Raises ``Refused``.

        ``Completed.output`` and ``Completed.media`` are what to deliver, labels included.
        """
        return self.service.complete(self._service(service), ticket_id, output, media=self._items(media))

    def _items(self, media: Sequence[bytes | MediaItem]) -> list[MediaItem]:
        limits = MediaLimits.from_settings(self.settings)
        return [
            item if isinstance(item, MediaItem) else MediaItem.from_bytes(item, limits=limits)
            for item in media
        ]

    def close(self) -> None:
        self.db.dispose()
