"""Matching a probe against every enrolled template of a service, from a decrypted in-memory matrix.

Each worker keeps, per service, the active templates decrypted into one float32 matrix per kind
(face 128-d, voice 256-d) with their squared norms, consent ids, operations and expiry. A request
reads one row (``consent_state.version``): when it moved, the matrices are rebuilt from the
database before matching, so a revocation or a new consent in any worker is seen by the next
request everywhere. Matching is one BLAS matrix-vector product: for 100,000 face templates,
``‖t - p‖² = ‖t‖² - 2 t·p + ‖p‖²`` costs about 13 M multiply-adds.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from synthgate.consent.biometrics import FACE_DIM, VOICE_DIM
from synthgate.consent.models import BiometricTemplate, Consent, ConsentState
from synthgate.db import utcnow
from synthgate.keys import KeyStore

DIMS = {"face": FACE_DIM, "voice": VOICE_DIM}


def encode_vector(keys: KeyStore, vector: np.ndarray, kind: str) -> str:
    raw = np.asarray(vector, dtype="<f4").tobytes()
    return keys.encrypt(base64.b64encode(raw).decode(), f"consent-template/{kind}")


def decode_vector(keys: KeyStore, token: str, kind: str) -> np.ndarray:
    raw = base64.b64decode(keys.decrypt(token, f"consent-template/{kind}"))
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


Row = tuple[str, str, np.ndarray, float, list[str]]
"""template id, consent id, vector, expiry (POSIX seconds), operations."""


@dataclass
class KindIndex:
    """All templates of one kind: one row per template."""

    kind: str
    matrix: np.ndarray
    norms: np.ndarray
    template_ids: np.ndarray
    consent_ids: np.ndarray
    expires: np.ndarray
    """Expiry per row, as POSIX seconds (an expired consent stops matching before the purge runs)."""
    operations: dict[str, np.ndarray] = field(default_factory=dict)
    """Per operation, which rows allow it."""
    _penalties: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, kind: str, rows: list[Row]) -> KindIndex:
        dim = DIMS[kind]
        matrix = np.stack([r[2] for r in rows]).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
        ops: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            for op in row[4]:
                ops.setdefault(op, []).append(index)
        masks = {}
        for op, indexes in ops.items():
            mask = np.zeros(len(rows), dtype=bool)
            mask[indexes] = True
            masks[op] = mask
        return cls(
            kind=kind,
            matrix=np.ascontiguousarray(matrix),
            norms=np.einsum("ij,ij->i", matrix, matrix) if rows else np.zeros(0, np.float32),
            template_ids=np.array([r[0] for r in rows], dtype=object),
            consent_ids=np.array([r[1] for r in rows], dtype=object),
            expires=np.array([r[3] for r in rows], dtype=np.float64),
            operations=masks,
        )

    def changed(self, removed: set[str], added: list[Row]) -> KindIndex:
        """This index without the ``removed`` consents' rows and with the ``added`` rows it lacks."""
        keep = ~np.isin(self.consent_ids, list(removed)) if removed else np.ones(len(self.consent_ids), bool)
        known = set(self.template_ids[keep].tolist())
        extra = KindIndex.build(self.kind, [r for r in added if r[0] not in known and r[1] not in removed])
        if keep.all() and not len(extra.consent_ids):
            return self
        kept = int(keep.sum())
        operations = {
            op: np.concatenate(
                [
                    self.operations[op][keep] if op in self.operations else np.zeros(kept, bool),
                    extra.operations.get(op, np.zeros(len(extra.consent_ids), bool)),
                ]
            )
            for op in set(self.operations) | set(extra.operations)
        }
        return KindIndex(
            kind=self.kind,
            matrix=np.ascontiguousarray(np.concatenate([self.matrix[keep], extra.matrix])),
            norms=np.concatenate([self.norms[keep], extra.norms]),
            template_ids=np.concatenate([self.template_ids[keep], extra.template_ids]),
            consent_ids=np.concatenate([self.consent_ids[keep], extra.consent_ids]),
            expires=np.concatenate([self.expires[keep], extra.expires]),
            operations=operations,
        )

    def distances(self, probe: np.ndarray) -> np.ndarray:
        """Euclidean distance for faces; cosine distance (1 - cos) for the unit-length voice vectors."""
        probe = np.asarray(probe, dtype=np.float32)
        if self.kind == "voice":
            return 1.0 - self.matrix @ probe
        squared = self.norms - 2.0 * (self.matrix @ probe) + float(probe @ probe)
        return np.sqrt(np.maximum(squared, 0.0))

    def _penalty(self, operation: str) -> np.ndarray | None:
        """0 where a row allows ``operation``, +inf elsewhere (built once per index and operation)."""
        cached = self._penalties.get(operation)
        if cached is None:
            allowed = self.operations.get(operation)
            if allowed is None or not allowed.any():
                return None
            cached = np.where(allowed, np.float32(0.0), np.float32(np.inf)).astype(np.float32)
            self._penalties[operation] = cached
        return cached

    def best(
        self, probe: np.ndarray, operation: str, now: dt.datetime | None = None
    ) -> tuple[str, float] | None:
        """The closest consent that allows ``operation`` and has not expired, with its distance.

        One matrix-vector product ranks every row (``‖t‖² - 2 t·p`` orders like the distance); the
        operation is a precomputed +inf penalty; only the winner's expiry and distance are checked.
        """
        if not len(self.consent_ids):
            return None
        penalty = self._penalty(operation)
        if penalty is None:
            return None
        probe = np.asarray(probe, dtype=np.float32)
        products = self.matrix @ probe
        scores = (1.0 - products if self.kind == "voice" else self.norms - 2.0 * products) + penalty
        stamp = (now or utcnow()).timestamp()
        while True:
            index = int(np.argmin(scores))
            if not np.isfinite(scores[index]):
                return None
            if self.expires[index] > stamp:
                break
            scores[index] = np.inf  # past its date: the purge job has not deleted it yet
        if self.kind == "voice":
            distance = float(scores[index])
        else:
            distance = float(np.sqrt(max(float(scores[index]) + float(probe @ probe), 0.0)))
        return str(self.consent_ids[index]), distance


@dataclass
class ServiceTemplates:
    version: int
    as_of: dt.datetime
    """``consent_state.changed_at`` when these were read: the next delta starts a margin before it."""
    kinds: dict[str, KindIndex]

    def index(self, kind: str) -> KindIndex:
        return self.kinds.get(kind) or KindIndex.build(kind, [])


# A consent committed by a slow transaction may carry a creation time a little before the state
# version another worker read; deltas look back this far and drop rows they already hold.
DELTA_MARGIN = dt.timedelta(minutes=5)


class TemplateCache:
    """Per worker: service id → its decrypted templates at a known ``consent_state`` version.

    A change costs a delta (new templates, revoked consents) rather than decrypting everything again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], ServiceTemplates] = {}

    def get(self, session: Session, keys: KeyStore, service_id: str) -> ServiceTemplates:
        url = str(session.get_bind().engine.url)
        state = session.execute(
            select(ConsentState.version, ConsentState.changed_at).where(ConsentState.service_id == service_id)
        ).first()
        version, changed_at = (state[0], state[1]) if state else (0, EPOCH)
        key = (url, service_id)
        cached = self._entries.get(key)
        if cached is not None and cached.version == version:
            return cached
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached.version == version:
                return cached
            if cached is None or version < cached.version:
                built = load(session, keys, service_id, version, changed_at)
            else:
                built = delta(session, keys, service_id, cached, version, changed_at)
            self._entries[key] = built
            return built

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _rows(
    session: Session, keys: KeyStore, service_id: str, since: dt.datetime | None
) -> dict[str, list[Row]]:
    now = utcnow()
    stmt = (
        select(
            BiometricTemplate.id,
            BiometricTemplate.kind,
            BiometricTemplate.vector_enc,
            Consent.id,
            Consent.expires_at,
            Consent.operations,
        )
        .join(Consent, Consent.id == BiometricTemplate.consent_id)
        .where(
            BiometricTemplate.service_id == service_id, Consent.status == "active", Consent.expires_at > now
        )
    )
    if since is not None:
        stmt = stmt.where(BiometricTemplate.created_at >= since)
    grouped: dict[str, list[Row]] = {"face": [], "voice": []}
    for template_id, kind, vector_enc, consent_id, expires_at, operations in session.execute(stmt).all():
        grouped.setdefault(kind, []).append(
            (
                template_id,
                consent_id,
                decode_vector(keys, vector_enc, kind),
                expires_at.timestamp(),
                list(operations),
            )
        )
    return grouped


def load(
    session: Session, keys: KeyStore, service_id: str, version: int, changed_at: dt.datetime = EPOCH
) -> ServiceTemplates:
    grouped = _rows(session, keys, service_id, None)
    return ServiceTemplates(
        version, changed_at, {kind: KindIndex.build(kind, rows) for kind, rows in grouped.items()}
    )


def delta(
    session: Session,
    keys: KeyStore,
    service_id: str,
    cached: ServiceTemplates,
    version: int,
    changed_at: dt.datetime,
) -> ServiceTemplates:
    """Apply what changed since ``cached``: templates added, consents revoked (expired ones already
    stop matching by their date)."""
    since = cached.as_of - DELTA_MARGIN
    added = _rows(session, keys, service_id, since)
    removed = set(
        session.scalars(
            select(Consent.id).where(
                Consent.service_id == service_id, Consent.status != "active", Consent.revoked_at >= since
            )
        )
    )
    kinds = {
        kind: cached.index(kind).changed(removed, added.get(kind, []))
        for kind in set(cached.kinds) | set(added)
    }
    return ServiceTemplates(version, changed_at, kinds)


cache = TemplateCache()
