"""How a consent link reaches the person asked: a small protocol with a registry.

The default writes the link to the structured log (development); ``sms`` sends it with the
configured SMS sender (identity domain); a provider plugs in its own channel (e-mail, app push)
under the entry-point group ``synthgate.consent_notifiers``. The link is a bearer secret for the
subject alone: it is never returned to the user who asked.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from synthgate.config import Settings
from synthgate.identity.verifiers import sms_senders
from synthgate.registry import Registry

if TYPE_CHECKING:
    from synthgate.gateway.sdk import Gateway

log = structlog.get_logger("synthgate.consent")


@dataclass(frozen=True)
class ConsentInvitation:
    contact: str
    """The subject's contact (an E.164 mobile number)."""
    link: str
    service_name: str
    operations: tuple[str, ...]
    message: str


class ConsentNotifier(Protocol):
    name: str

    def send(self, invitation: ConsentInvitation) -> None: ...


notifiers: Registry[ConsentNotifier] = Registry("consent_notifiers")


@notifiers.register("log")
class LogNotifier:
    name = "log"

    def __init__(self, settings: Settings) -> None:
        del settings

    def send(self, invitation: ConsentInvitation) -> None:
        # Development default: the link must be readable here; the number is masked like the console does.
        masked = invitation.contact[:6] + "****" + invitation.contact[-4:]
        log.info("consent.link", to=masked, link=invitation.link, service=invitation.service_name)


@notifiers.register("sms")
class SmsNotifier:
    """Sends the link by SMS through the identity domain's configured sender."""

    name = "sms"

    def __init__(self, settings: Settings) -> None:
        self.sender = sms_senders.create(settings.sms_sender, settings)

    def send(self, invitation: ConsentInvitation) -> None:
        self.sender.send(invitation.contact, invitation.message)


class CapturingNotifier:
    """Keeps invitations in memory (tests and demos: a real round trip without a phone)."""

    name = "capture"

    def __init__(self) -> None:
        self.sent: list[ConsentInvitation] = []

    def send(self, invitation: ConsentInvitation) -> None:
        self.sent.append(invitation)

    @property
    def last_link(self) -> str:
        assert self.sent, "no consent invitation was sent"
        return self.sent[-1].link


_installed: weakref.WeakKeyDictionary[Gateway, ConsentNotifier] = weakref.WeakKeyDictionary()


def install(gateway: Gateway, notifier: ConsentNotifier) -> None:
    """Use ``notifier`` for this gateway instead of the configured one."""
    _installed[gateway] = notifier


def notifier_for(gateway: Gateway) -> ConsentNotifier:
    notifier = _installed.get(gateway)
    if notifier is None:
        notifier = notifiers.create(getattr(gateway.settings, "consent_notifier", "log"), gateway.settings)
        _installed[gateway] = notifier
    return notifier
