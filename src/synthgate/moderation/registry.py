"""The detector registry and the guarded runner: every detector beyond the in-process text matchers
runs under its own timeout, and a detector that fails or times out has a defined outcome.

A service lists its detectors in ``settings["moderation_detectors"]``::

    {"nsfw": {"timeout": 10, "on_failure": "closed"},
     "ocr": {"timeout": 20},
     "hash-bank": {},
     "chat-guard": {"url": "http://guard:8000/v1", "model": "Llama-Guard-3-1B",
                    "timeout": 2, "on_failure": "open"},
     "nsfw-off-example": false}

Without the key, the media detectors (``hash-bank``, ``nsfw``, ``ocr``) run with their defaults
and no remote guard is called. ``false`` / ``null`` disables a detector.

Outcomes of a failure (timeout, exception, protocol error):

* ``on_failure: closed`` (the default) — a ``detector-error`` finding; the default policy blocks.
* ``on_failure: open`` — a ``detector-skipped`` finding; the default policy flags (lets it through
  and says so). Either way the verdict's notes say which detector failed and how.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from synthgate.errors import InvalidInput
from synthgate.moderation.detectors_media import HashBankDetector, NsfwDetector, OcrDetector
from synthgate.moderation.findings import Finding
from synthgate.moderation.remote import ChatGuardDetector, OpenAIModerationDetector
from synthgate.registry import Registry

OnFailure = Literal["open", "closed"]

detectors: Registry[Any] = Registry("detectors")
"""Detector factories by name; plug-ins register under the entry-point group ``synthgate.detectors``."""

detectors.register("nsfw")(NsfwDetector)
detectors.register("ocr")(OcrDetector)
detectors.register("hash-bank")(HashBankDetector)
detectors.register("openai-moderation")(OpenAIModerationDetector)
detectors.register("chat-guard")(ChatGuardDetector)

DEFAULT_TIMEOUTS: dict[str, float] = {
    "hash-bank": 10.0,
    "nsfw": 15.0,
    "ocr": 30.0,
    "openai-moderation": 5.0,
    "chat-guard": 5.0,
}
MEDIA_DEFAULTS = ("hash-bank", "nsfw", "ocr")
SETTINGS_KEY = "moderation_detectors"


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    timeout: float = 10.0
    on_failure: OnFailure = "closed"
    options: dict[str, Any] = field(default_factory=dict)


def parse_config(raw: Any) -> list[DetectorConfig]:
    """The service's detector list; unknown names and bad values are a clear 422."""
    if raw is None:
        return [DetectorConfig(n, DEFAULT_TIMEOUTS[n]) for n in MEDIA_DEFAULTS]
    if not isinstance(raw, dict):
        raise InvalidInput(f"{SETTINGS_KEY} is an object of detector name → settings", field=SETTINGS_KEY)
    known = set(detectors.names())
    configs = []
    for name, value in raw.items():
        if name not in known:
            raise InvalidInput(
                f"{SETTINGS_KEY}: no detector {name!r}; known: {', '.join(sorted(known))}", field=SETTINGS_KEY
            )
        if value is None or value is False:
            continue
        options = dict(value) if isinstance(value, dict) else {}
        try:
            timeout = float(options.pop("timeout", DEFAULT_TIMEOUTS.get(name, 10.0)))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{SETTINGS_KEY}.{name}.timeout is not a number", field=SETTINGS_KEY) from exc
        on_failure = options.pop("on_failure", "closed")
        if on_failure not in ("open", "closed") or not 0 < timeout <= 600:
            raise InvalidInput(
                f"{SETTINGS_KEY}.{name}: on_failure is open|closed, timeout in (0, 600] seconds",
                field=SETTINGS_KEY,
            )
        configs.append(DetectorConfig(name, timeout, on_failure, options))
    return configs


@dataclass
class Guarded:
    """A detector instance with its timeout and failure setting."""

    detector: Any
    config: DetectorConfig

    @property
    def name(self) -> str:
        return str(self.detector.name)

    @property
    def version(self) -> str:
        return str(self.detector.version)


_INSTANCES: dict[tuple[str, str], Any] = {}


def instantiate(config: DetectorConfig) -> Guarded:
    """Detectors are cached per (name, options): models load once, remote clients are cheap."""
    key = (config.name, repr(sorted(config.options.items())))
    detector = _INSTANCES.get(key)
    if detector is None:
        options = dict(config.options)
        if config.name in ("openai-moderation", "chat-guard"):
            options.setdefault("timeout", config.timeout)
        try:
            detector = detectors.create(config.name, **options)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{SETTINGS_KEY}.{config.name}: {exc}", field=SETTINGS_KEY) from exc
        if len(_INSTANCES) > 256:
            _INSTANCES.clear()
        _INSTANCES[key] = detector
    return Guarded(detector, config)


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="moderation-detector")


@dataclass
class RunResult:
    findings: list[Finding]
    note: str | None = None
    seconds: float = 0.0


def run_guarded(guarded: Guarded, call: Callable[[], list[Finding]], *, subject: str = "") -> RunResult:
    """Run one detector call under its timeout. A call that overruns keeps its worker thread until
    it returns (Python threads cannot be killed) but no request waits for it."""
    import time

    started = time.perf_counter()
    future = _POOL.submit(call)
    config = guarded.config
    try:
        findings = future.result(timeout=config.timeout)
        return RunResult(findings, None, time.perf_counter() - started)
    except concurrent.futures.TimeoutError:
        reason = f"timed out after {config.timeout:g} s"
    except Exception as exc:
        reason = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    closed = config.on_failure == "closed"
    where = f" on {subject}" if subject else ""
    finding = Finding(
        detector=guarded.name,
        category="detector-error" if closed else "detector-skipped",
        score=1.0,
        evidence=f"{guarded.name} {reason}{where}",
        rule=f"detector.{guarded.name}",
        variant="fail-closed" if closed else "fail-open",
    )
    note = f"{guarded.name} {reason}{where}; fail-{config.on_failure}"
    return RunResult([finding], note, time.perf_counter() - started)


SERVICE_SETTINGS = frozenset({SETTINGS_KEY, "hash_banks", "review_callback_url"})
"""The service settings the moderation domain reads."""


def validate_service_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Check the moderation keys of a service's settings (others are left alone)."""
    from synthgate.moderation.service import validate_bank

    if SETTINGS_KEY in settings:
        for config in parse_config(settings[SETTINGS_KEY]):
            instantiate(config)
    banks = settings.get("hash_banks")
    if banks is not None:
        if not isinstance(banks, list) or not banks:
            raise InvalidInput("hash_banks is a non-empty list of bank names", field="hash_banks")
        for name in banks:
            validate_bank(name)
    url = settings.get("review_callback_url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise InvalidInput("review_callback_url must be an http(s) URL", field="review_callback_url")
    return settings
