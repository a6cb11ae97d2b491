"""Screening one text: the detectors a service uses, the policy, and the verdict.

The compiled feature library is shared by every request of a process. The newest published
version number is read at most once a second per worker (one small query; a publication made in
this worker is seen at once); when it differs from the compiled one, one thread recompiles while
the others keep screening with the version they have, and the new matcher replaces the old in one
reference assignment. A worker therefore picks up a new version within a second, never restarts,
and never lets a request through unscreened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, Protocol, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from synthgate.governance.models import Service
from synthgate.media import MediaItem
from synthgate.moderation import service as library
from synthgate.moderation.detectors_media import MediaScan, Undecodable, decode_frames
from synthgate.moderation.findings import Finding
from synthgate.moderation.hashbank import HashBank
from synthgate.moderation.lexicon import LexiconMatcher
from synthgate.moderation.models import LibraryVersion
from synthgate.moderation.pii import InjectionDetector, PiiDetector
from synthgate.moderation.policy import RANK, Action, PolicyDocument, Stage, Verdict, decide
from synthgate.moderation.registry import Guarded, run_guarded

log = structlog.get_logger("synthgate.moderation")
EMPTY_LIBRARY = LexiconMatcher([], version="0")
T = TypeVar("T")


class TextDetector(Protocol):
    name: str
    version: str

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]: ...

    def safe_end(self, text: str, start: int) -> int: ...


RECHECK_SECONDS = 1.0

BACKGROUND_COMPILE_ENTRIES = 20_000
"""Above this many entries a new version compiles in a background thread (tens of seconds at
100,000 terms, mostly pinyin) while every request, including the one that noticed it, keeps
screening with the version before; smaller libraries compile inline, so they are live at once."""


class VersionedCache(Generic[T]):
    """One compiled form of the library per process, keyed by database and published version."""

    def __init__(self, build: Callable[[Session, int], T], empty: T) -> None:
        self._build = build
        self._empty = empty
        self._lock = threading.Lock()
        self._current: tuple[tuple[str, int, str], T] | None = None
        self._checked: tuple[str, int, float] | None = None

    def last(self) -> T:
        current = self._current
        return current[1] if current else self._empty

    def _compile(self, session: Session, key: tuple[str, int, str]) -> T:
        compiled = self._build(session, key[1]) if key[1] else self._empty
        self._current = (key, compiled)  # one reference assignment: the swap is atomic
        return compiled

    def _compile_in_background(self, engine: Engine, key: tuple[str, int, str]) -> None:
        def work() -> None:
            try:
                with Session(engine) as session:
                    self._compile(session, key)
            except Exception:
                log.exception("moderation.library_compile_failed", version=key[1])
            finally:
                self._lock.release()

        threading.Thread(target=work, name=f"library-compile-{key[1]}", daemon=True).start()

    def get(self, session: Session) -> T:
        engine = session.get_bind().engine
        url = str(engine.url)
        # The newest version is looked up at most once a second per worker (a round trip saved on
        # every request); a publication in this worker is seen at once, one in another worker
        # within RECHECK_SECONDS — meanwhile requests screen with the version before, never without.
        checked, current = self._checked, self._current
        if (
            checked is not None
            and current is not None
            and checked[0] == url == current[0][0]
            and checked[1] == library.publications_in_process()
            and time.monotonic() - checked[2] < RECHECK_SECONDS
        ):
            return current[1]
        stamp = (url, library.publications_in_process(), time.monotonic())
        row = session.execute(
            select(LibraryVersion.version, LibraryVersion.published_at, LibraryVersion.entries)
            .order_by(LibraryVersion.version.desc())
            .limit(1)
        ).first()
        # The publication time tells apart two databases (tests, tenants) at the same number.
        key = (str(engine.url), row[0] if row else 0, str(row[1]) if row else "")
        current = self._current
        if current is not None and current[0] == key:
            self._checked = stamp  # only an up-to-date answer may be reused without asking
            return current[1]
        if current is not None and not self._lock.acquire(blocking=False):
            return current[1]  # another thread compiles the new version; keep screening meanwhile
        if current is None:
            self._lock.acquire()
        current = self._current
        if current is not None and current[0] == key:
            self._checked = stamp
            self._lock.release()
            return current[1]
        if current is not None and row is not None and row[2] > BACKGROUND_COMPILE_ENTRIES:
            self._compile_in_background(engine, key)  # releases the lock when done
            return current[1]
        try:
            compiled = self._compile(session, key)
            self._checked = stamp
            return compiled
        finally:
            self._lock.release()


def new_library_cache() -> VersionedCache[LexiconMatcher]:
    return VersionedCache(
        lambda session, version: LexiconMatcher(
            library.lexicon_entries(session, version), version=str(version)
        ),
        EMPTY_LIBRARY,
    )


library_cache = new_library_cache()
hash_bank_cache: VersionedCache[HashBank] = VersionedCache(
    lambda session, version: HashBank(library.bank_entries(session, version), version=str(version)),
    HashBank([]),
)
_PII = PiiDetector()
_INJECTION = InjectionDetector()


class _Library:
    """The library matcher under the detector name ``library`` (its own name is ``lexicon``)."""

    name = "library"

    def __init__(self, matcher: LexiconMatcher) -> None:
        self.matcher = matcher
        self.version = matcher.version

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]:
        return [
            Finding("library", f.category, f.score, f.span, f.evidence, f.rule, f.variant)
            for f in self.matcher.scan_window(text, start, final=final)
        ]

    def safe_end(self, text: str, start: int) -> int:
        return self.matcher.safe_end(text, start)


@dataclass
class Screener:
    """The detectors of one service, run together; also what a stream guard screens with."""

    parts: Sequence[TextDetector]
    name: str = "moderation"
    version: str = ""

    def __post_init__(self) -> None:
        self.version = ";".join(f"{p.name}={p.version}" for p in self.parts)

    @property
    def detectors(self) -> dict[str, str]:
        return {p.name: p.version for p in self.parts}

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]:
        findings: list[Finding] = []
        for part in self.parts:
            findings.extend(part.scan_window(text, start, final=final))
        findings.sort(key=lambda f: f.span or (0, 0))
        return findings

    def scan(self, text: str) -> list[Finding]:
        return self.scan_window(text, 0, final=True)

    def safe_end(self, text: str, start: int) -> int:
        return min((p.safe_end(text, start) for p in self.parts), default=len(text))


@dataclass
class StreamScreener:
    """A screener that reports only what the policy stops an output stream for."""

    screener: Screener
    policy: PolicyDocument
    medium: str = "text"
    name: str = "moderation"
    version: str = field(default="")

    def __post_init__(self) -> None:
        self.version = self.screener.version

    def scan_window(self, text: str, start: int, *, final: bool) -> list[Finding]:
        found = self.screener.scan_window(text, start, final=final)
        # Review cannot hold a stream that is already flowing: it stops it, like a block.
        return [f for f in found if RANK[self.policy.action_for(f, "output", self.medium)] >= RANK["review"]]

    def safe_end(self, text: str, start: int) -> int:
        return self.screener.safe_end(text, start)


_TERM_LISTS: dict[tuple[str, ...], LexiconMatcher] = {}


def term_list_matcher(terms: Iterable[str]) -> LexiconMatcher:
    from synthgate.moderation.detectors import TermListDetector

    key = tuple(sorted({t.strip() for t in terms if t and t.strip()}))
    matcher = _TERM_LISTS.get(key)
    if matcher is None:
        if len(_TERM_LISTS) > 256:
            _TERM_LISTS.clear()
        matcher = _TERM_LISTS[key] = TermListDetector(key)
    return matcher


def build_screener(library_matcher: LexiconMatcher, blocked_terms: Iterable[str]) -> Screener:
    parts: list[TextDetector] = [_Library(library_matcher)]
    terms = term_list_matcher(blocked_terms)
    if len(terms):
        parts.append(terms)
    parts.extend([_PII, _INJECTION])
    return Screener(parts)


@dataclass
class Moderation:
    """What a request screens with, fixed at its first screening so input and output agree.

    ``screener`` holds the in-process text matchers (library, term lists, PII, injection);
    ``text_guards`` the remote guard models and ``media_detectors`` the media detectors, each run
    under its own timeout with its fail-open / fail-closed setting (``registry.py``).
    """

    screener: Screener
    policy: PolicyDocument
    policy_version: str
    text_guards: Sequence[Guarded] = ()
    media_detectors: Sequence[Guarded] = ()
    bank: HashBank | None = None
    banks: frozenset[str] | None = None

    def verdict(self, text: str, stage: Stage, medium: str = "text", *, prompt: str = "") -> Verdict:
        findings = self.screener.scan(text)
        detectors = dict(self.screener.detectors)
        notes: list[str] = []
        for guard in self.text_guards:
            detectors[guard.name] = guard.version
            if not text.strip():
                continue
            call = (
                partial(guard.detector.scan_text, text, stage, prompt=prompt)
                if guard.name == "chat-guard"
                else partial(guard.detector.scan_text, text, stage)
            )
            result = run_guarded(guard, call)
            findings.extend(result.findings)
            if result.note:
                notes.append(result.note)
        return decide(
            self.policy,
            self.policy_version,
            findings,
            stage=stage,
            medium=medium,
            detectors=detectors,
            notes=notes,
        )

    def verdict_media(self, items: Sequence[MediaItem], stage: Stage) -> Verdict:
        """Screen files (images, video frames, audio by hash) with the media detectors and the policy.

        Each file is decoded once; one that cannot be decoded is an ``undecodable`` finding.
        Evidence names the file by its position (``file 0``) and role.
        """
        bank = self.bank if self.bank is not None else hash_bank_cache.last()
        scan = MediaScan(self.screener, bank, self.banks)
        decided: list[tuple[Finding, Action]] = []
        detectors: dict[str, str] = {}
        notes: list[str] = []
        media: list[str] = []
        for number, item in enumerate(items):
            subject = f"file {number} ({item.role} {item.medium}/{item.container})"
            media.append(item.medium)
            try:
                frames = decode_frames(item)
            except Undecodable as exc:
                bad = Finding("decoder", "undecodable", 1.0, None, f"{subject}: {exc}"[:200], "media.decode")
                decided.append((bad, self.policy.action_for(bad, stage, item.medium)))
                continue
            ran = False
            for guarded in self.media_detectors:
                if item.medium not in guarded.detector.media:
                    continue
                ran = True
                result = run_guarded(
                    guarded, partial(guarded.detector.scan_media, item, frames, scan), subject=subject
                )
                detectors[guarded.name] = guarded.version
                if result.note:
                    notes.append(result.note)
                for f in result.findings:
                    evidence = f"{subject}: {f.evidence}"[:300]
                    tagged = Finding(f.detector, f.category, f.score, f.span, evidence, f.rule, f.variant)
                    decided.append((tagged, self.policy.action_for(tagged, stage, item.medium)))
            if not ran:
                notes.append(f"{subject}: no detector screens {item.medium}")
        decided.sort(key=lambda fa: -RANK[fa[1]])
        action: Action = max((a for _, a in decided), key=RANK.__getitem__, default="allow")
        return Verdict(
            action=action,
            stage=stage,
            medium="+".join(sorted(set(media))) or "none",
            policy=self.policy.name,
            policy_version=self.policy_version,
            detectors=detectors,
            findings=decided,
            notes=notes,
        )

    def stream(self, medium: str = "text") -> StreamScreener:
        return StreamScreener(self.screener, self.policy, medium)


def build_moderation(session: Session, service: Service | None, blocked_terms: Iterable[str]) -> Moderation:
    """Everything a request of ``service`` screens with: the published library and hash banks, the
    term lists, the service's policy, its remote guards and media detectors, and its named banks."""
    from synthgate.moderation.registry import SETTINGS_KEY, instantiate, parse_config

    settings = (service.settings or {}) if service is not None else {}
    terms = list(blocked_terms) + list(settings.get("blocked_terms", []))
    policy, policy_version = library.policy_for(session, service)
    configs = [instantiate(c) for c in parse_config(settings.get(SETTINGS_KEY))]
    return Moderation(
        build_screener(library_cache.get(session), terms),
        policy,
        policy_version,
        text_guards=[g for g in configs if hasattr(g.detector, "scan_text")],
        media_detectors=[g for g in configs if hasattr(g.detector, "scan_media")],
        bank=hash_bank_cache.get(session),
        banks=library.banks_for(service),
    )
