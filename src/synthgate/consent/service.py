"""Writes consent subjects, requests, signed consents and templates (DSP-14).

The person whose face or voice is edited consents through a channel of their own: a user starts a
request naming the person's mobile number; the person gets a link, proves they hold that number
(the identity domain's phone OTP), reads the versioned text, chooses the scope and enrols a photo
and/or a voice sample. The consent is signed (Ed25519), keeps the hash of the text seen, and ends
on revocation or expiry, which deletes its templates and moves the service's ``consent_state``
version so every worker's matcher drops them before its next request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.config import Settings
from synthgate.consent import biometrics, texts
from synthgate.consent.matcher import encode_vector
from synthgate.consent.models import BiometricTemplate, Consent, ConsentRequest, ConsentState, ConsentSubject
from synthgate.consent.notifiers import ConsentInvitation, ConsentNotifier
from synthgate.db import utcnow
from synthgate.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from synthgate.governance.models import Service
from synthgate.identity import service as identity
from synthgate.identity.models import Account
from synthgate.identity.validators import InvalidIdentifier, validate_cn_mobile
from synthgate.identity.verifiers import SmsSender
from synthgate.keys import KeyStore
from synthgate.media import MediaItem
from synthgate.media.limits import MediaLimits

DEFAULT_BIOMETRIC_OPERATIONS = (
    "face.swap",
    "face.manipulate",
    "face.reference",
    "voice.clone",
    "voice.convert",
)
REQUESTS_PER_SUBJECT_PER_DAY = 5
VERIFICATION_FRESH_MINUTES = 30


def biometric_operations(service: Service) -> list[str]:
    configured = (service.settings or {}).get("biometric_operations")
    if configured is None:
        return list(DEFAULT_BIOMETRIC_OPERATIONS)
    return [str(op) for op in configured]


def operation_kinds(operation: str) -> set[str]:
    """Which biometric a typed operation edits: ``face.*`` faces, ``voice.*`` voices, others both."""
    prefix = operation.split(".", 1)[0]
    if prefix == "face":
        return {"face"}
    if prefix == "voice":
        return {"voice"}
    return {"face", "voice"}


def signing_key(keys: KeyStore) -> Ed25519PrivateKey:
    """Derived from the master secret, so every worker signs with the same key and nothing else is stored."""
    return Ed25519PrivateKey.from_private_bytes(keys.derive("consent-signing/ed25519"))


def public_key(keys: KeyStore) -> Ed25519PublicKey:
    return signing_key(keys).public_key()


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_signature(keys: KeyStore, consent: Consent) -> bool:
    try:
        public_key(keys).verify(base64.b64decode(consent.signature), _canonical(consent.payload))
    except (InvalidSignature, ValueError):
        return False
    # The signed payload must also be what the row says.
    payload = consent.payload
    return (
        payload.get("consent") == consent.id
        and payload.get("operations") == list(consent.operations)
        and payload.get("text_sha256") == consent.text_sha256
        and payload.get("expires_at") == consent.expires_at.isoformat()
    )


def _bump(session: Session, service_id: str) -> None:
    """Move the service's consent version; workers compare it on every request."""
    updated = session.execute(
        update(ConsentState)
        .where(ConsentState.service_id == service_id)
        .values(version=ConsentState.version + 1, changed_at=utcnow())
    )
    if getattr(updated, "rowcount", 0) == 0:
        session.add(ConsentState(service_id=service_id, version=1))
    session.flush()


# --- requests -----------------------------------------------------------------------------------


def _token_hash(keys: KeyStore, token: str) -> str:
    return keys.mac("consent-link", token)


def _subject_for(session: Session, keys: KeyStore, service: Service, phone: str) -> ConsentSubject:
    lookup = keys.lookup_hash(phone, "phone")
    subject = session.scalar(
        select(ConsentSubject).where(
            ConsentSubject.service_id == service.id, ConsentSubject.contact_lookup == lookup
        )
    )
    if subject is None:
        subject = ConsentSubject(
            service_id=service.id, contact_enc=keys.encrypt(phone, "phone"), contact_lookup=lookup
        )
        session.add(subject)
        session.flush()
    return subject


@dataclass(frozen=True)
class StartedRequest:
    request: ConsentRequest
    link: str


def start_request(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    notifier: ConsentNotifier,
    service: Service,
    *,
    requested_by: str,
    contact: str,
    operations: list[str],
    purpose: str = "",
) -> StartedRequest:
    """Ask a person for their separate consent; the link goes to them, never back to the asker."""
    if not requested_by or len(requested_by) > 200 or not requested_by.isprintable():
        raise InvalidInput("user must be 1-200 printable characters", field="user")
    try:
        phone = validate_cn_mobile(contact)
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc), field="contact") from exc
    allowed = biometric_operations(service)
    chosen = list(dict.fromkeys(operations))
    if not chosen:
        raise InvalidInput("name at least one operation", field="operations")
    unknown = [op for op in chosen if op not in allowed]
    if unknown:
        raise InvalidInput(
            f"not biometric operations of this service: {', '.join(unknown)}; known: {', '.join(allowed)}",
            field="operations",
        )
    if len(purpose) > 1000:
        raise InvalidInput("purpose must be at most 1000 characters", field="purpose")
    subject = _subject_for(session, keys, service, phone)
    now = utcnow()
    recent = session.scalar(
        select(func.count())
        .select_from(ConsentRequest)
        .where(
            ConsentRequest.subject_id == subject.id, ConsentRequest.created_at > now - dt.timedelta(days=1)
        )
    )
    if (recent or 0) >= REQUESTS_PER_SUBJECT_PER_DAY:
        raise RateLimited("this person was asked too often in the last day", retry_after=3600)
    token = secrets.token_urlsafe(32)
    request = ConsentRequest(
        service_id=service.id,
        subject_id=subject.id,
        requested_by=requested_by,
        operations=chosen,
        purpose=purpose.strip(),
        token_hash=_token_hash(keys, token),
        notifier=notifier.name,
        created_at=now,
        expires_at=now + dt.timedelta(hours=settings.consent_request_ttl_hours),
    )
    session.add(request)
    session.flush()
    link = f"{settings.public_base_url}/consent/{token}"
    message = (
        f"【synthgate】{service.name} 的用户请求编辑您的人脸或声音（{', '.join(chosen)}），需要您的单独同意。"
        f"查看、同意或拒绝：{link} — A user of {service.name} asks to edit your face or voice; "
        f"only you can consent: {link}"
    )
    notifier.send(ConsentInvitation(phone, link, service.name, tuple(chosen), message))
    audit.record(
        session,
        "consent.requested",
        actor=f"service:{service.slug}",
        service_id=service.id,
        subject_type="consent_request",
        subject_id=request.id,
        data={
            "subject": subject.id,
            "requested_by": requested_by,
            "operations": chosen,
            "notifier": notifier.name,
        },
    )
    return StartedRequest(request, link)


def request_by_token(session: Session, keys: KeyStore, token: str) -> ConsentRequest:
    if not token or len(token) > 100:
        raise NotFound("no such consent link")
    request = session.scalar(
        select(ConsentRequest).where(ConsentRequest.token_hash == _token_hash(keys, token))
    )
    if request is None:
        raise NotFound("no such consent link")
    if request.status in ("sent", "verified") and request.expires_at <= utcnow():
        request.status = "expired"
        audit.record(
            session,
            "consent.request_expired",
            actor="system",
            service_id=request.service_id,
            subject_type="consent_request",
            subject_id=request.id,
        )
    return request


def get_request(session: Session, service: Service, request_id: str) -> ConsentRequest:
    request = session.get(ConsentRequest, request_id)
    if request is None or request.service_id != service.id:
        raise NotFound("no such consent request for this service")
    return request


def _subject_account(session: Session, service: Service, subject: ConsentSubject) -> Account:
    """The identity account the subject verifies through (OTP rules and records stay identity's)."""
    if subject.account_id:
        account = session.get(Account, subject.account_id)
        if account is not None:
            return account
    account, _ = identity.register_account(
        session, service, f"consent-subject:{subject.id}", actor=f"consent-subject:{subject.id}"
    )
    subject.account_id = account.id
    return account


def _open(request: ConsentRequest) -> None:
    if request.status == "expired":
        raise Conflict("this consent link has expired; ask the user to send a new request")
    if request.status in ("consented", "declined"):
        raise Conflict(f"this request was already answered ({request.status})")


def send_code(
    session: Session, keys: KeyStore, settings: Settings, sender: SmsSender, request: ConsentRequest
) -> None:
    """A one-time code to the subject's own number (identity domain: expiring, rate-limited)."""
    _open(request)
    subject = session.get(ConsentSubject, request.subject_id)
    service = session.get(Service, request.service_id)
    assert subject is not None and service is not None
    account = _subject_account(session, service, subject)
    challenge = identity.start_phone_verification(
        session, keys, settings, sender, account, keys.decrypt(subject.contact_enc, "phone")
    )
    request.challenge_id = challenge.id


def confirm_code(
    session: Session, keys: KeyStore, settings: Settings, request: ConsentRequest, code: str
) -> identity.ConfirmOutcome:
    """Check the subject's code. Commit even when not ``ok``: failed attempts are counted."""
    _open(request)
    if not request.challenge_id:
        raise InvalidInput("ask for a code first", field="code")
    subject = session.get(ConsentSubject, request.subject_id)
    assert subject is not None and subject.account_id is not None
    account = session.get(Account, subject.account_id)
    assert account is not None
    outcome = identity.confirm_phone_verification(
        session, keys, settings, account, request.challenge_id, code
    )
    if outcome.ok:
        request.status = "verified"
        request.verified_at = utcnow()
        audit.record(
            session,
            "consent.subject_verified",
            actor=f"consent-subject:{subject.id}",
            service_id=request.service_id,
            subject_type="consent_request",
            subject_id=request.id,
            data={"method": "phone", "account": account.id},
        )
    return outcome


def verification_mark(keys: KeyStore, request: ConsentRequest) -> str:
    """What the subject's browser keeps after verifying: binds the later answer to that verification."""
    assert request.verified_at is not None
    return keys.mac("consent-verified", f"{request.id}:{request.verified_at.isoformat()}")


def ensure_verified(keys: KeyStore, request: ConsentRequest, mark: str | None) -> None:
    if request.status != "verified" or request.verified_at is None:
        raise Forbidden("confirm your mobile number first", code="consent.unverified")
    if not mark or not secrets.compare_digest(mark, verification_mark(keys, request)):
        raise Forbidden("confirm your mobile number in this browser first", code="consent.unverified")
    if utcnow() - request.verified_at > dt.timedelta(minutes=VERIFICATION_FRESH_MINUTES):
        raise Forbidden("your confirmation is too old; ask for a new code", code="consent.unverified")


# --- enrolment and the consent itself -----------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    kind: str
    vector: np.ndarray
    media: MediaItem


def enrol_face(data: bytes, limits: MediaLimits) -> Enrolment:
    """One clear face in a reference photo, or a clear reason why not."""
    item = MediaItem.from_bytes(data, role="reference", limits=limits)
    if item.medium != "image":
        raise InvalidInput("the reference photo must be an image (JPEG, PNG, WebP…)", field="photo")
    scan = biometrics.scan_image(item.data, limits)
    if not scan.faces:
        raise InvalidInput("no face found in the photo; use a clear, front-facing photo", field="photo")
    if scan.tiny and not scan.usable:
        raise InvalidInput("the face in the photo is too small; use a closer photo", field="photo")
    if len(scan.usable) > 1:
        raise InvalidInput("the photo shows more than one face; use a photo of yourself alone", field="photo")
    if scan.jpeg_quality is not None and scan.jpeg_quality < biometrics.MIN_JPEG_QUALITY:
        raise InvalidInput("the photo is too heavily compressed; use a better copy", field="photo")
    vector = scan.usable[0].embedding
    assert vector is not None
    return Enrolment("face", vector, item)


def enrol_voice(data: bytes, limits: MediaLimits) -> list[Enrolment]:
    item = MediaItem.from_bytes(data, role="reference", limits=limits)
    if item.medium not in ("audio", "video"):
        raise InvalidInput("the voice sample must be a recording (WAV, MP3, FLAC, Ogg…)", field="voice")
    wav = biometrics.audio_of(item, limits)
    if wav is None:
        raise InvalidInput("the recording has no sound", field="voice")
    scan = biometrics.scan_voice(wav)
    if not scan.has_voice:
        reason = "sounds like music, not speech" if scan.music_like else "has too little speech"
        raise InvalidInput(
            f"the recording {reason}; read a sentence aloud for at least "
            f"{biometrics.MIN_SPEECH_SECONDS:.0f} seconds",
            field="voice",
        )
    return [Enrolment("voice", vector, item) for vector in scan.embeddings]


def grant(
    session: Session,
    keys: KeyStore,
    settings: Settings,
    request: ConsentRequest,
    *,
    operations: list[str],
    until: dt.datetime,
    text_version: str,
    enrolments: list[Enrolment],
) -> Consent:
    _open(request)
    service = session.get(Service, request.service_id)
    assert service is not None
    chosen = [op for op in dict.fromkeys(operations)]
    if not chosen:
        raise InvalidInput("choose at least one operation", field="operations")
    if any(op not in request.operations for op in chosen):
        raise InvalidInput("you may only consent to operations that were asked for", field="operations")
    now = utcnow()
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    if until <= now:
        raise InvalidInput("the end date must be in the future", field="until")
    if until > now + dt.timedelta(days=settings.consent_max_days):
        raise InvalidInput(f"consent lasts at most {settings.consent_max_days} days", field="until")
    if text_version != texts.CURRENT_VERSION:
        raise Conflict(
            "the consent text changed while you read it; read the new version", field="text_version"
        )
    needed = set().union(*(operation_kinds(op) for op in chosen))
    given = {e.kind for e in enrolments}
    if "face" in needed and "voice" in needed:
        if not given:
            raise InvalidInput("enrol a reference photo or a voice sample", field="photo")
    elif not needed <= given:
        kind = next(iter(needed - given))
        raise InvalidInput(
            "enrol a reference photo" if kind == "face" else "enrol a voice sample",
            field="photo" if kind == "face" else "voice",
        )
    text = texts.current()
    shown = texts.render(text, service=service.name, operations=chosen)
    text_sha256 = hashlib.sha256(shown.encode()).hexdigest()
    subject = session.get(ConsentSubject, request.subject_id)
    assert subject is not None
    consent = Consent(
        service_id=service.id,
        subject_id=subject.id,
        request_id=request.id,
        operations=chosen,
        text_version=text.version,
        text_sha256=text_sha256,
        verification_method="phone",
        granted_at=now,
        expires_at=until,
        signature="",
    )
    session.add(consent)
    session.flush()
    payload = {
        "consent": consent.id,
        "service": service.id,
        "subject": subject.id,
        "request": request.id,
        "operations": chosen,
        "granted_at": now.isoformat(),
        "expires_at": until.isoformat(),
        "text_version": text.version,
        "text_sha256": text_sha256,
        "verification": "phone",
        "templates": sorted(e.kind for e in enrolments),
    }
    consent.payload = payload
    consent.signature = base64.b64encode(signing_key(keys).sign(_canonical(payload))).decode()
    for enrolment in enrolments:
        session.add(
            BiometricTemplate(
                consent_id=consent.id,
                service_id=service.id,
                kind=enrolment.kind,
                vector_enc=encode_vector(keys, enrolment.vector, enrolment.kind),
                media_enc=keys.encrypt(base64.b64encode(enrolment.media.data).decode(), "consent-media")
                if settings.consent_keep_raw_media
                else None,
            )
        )
    request.status = "consented"
    request.answered_at = now
    _bump(session, service.id)
    audit.record(
        session,
        "consent.granted",
        actor=f"consent-subject:{subject.id}",
        service_id=service.id,
        subject_type="consent",
        subject_id=consent.id,
        data={
            "request": request.id,
            "subject": subject.id,
            "operations": chosen,
            "expires_at": until.isoformat(),
            "text_version": text.version,
            "text_sha256": text_sha256,
            "templates": payload["templates"],
            "raw_media_kept": settings.consent_keep_raw_media,
        },
    )
    return consent


def decline(session: Session, request: ConsentRequest) -> None:
    _open(request)
    request.status = "declined"
    request.answered_at = utcnow()
    audit.record(
        session,
        "consent.declined",
        actor=f"consent-subject:{request.subject_id}",
        service_id=request.service_id,
        subject_type="consent_request",
        subject_id=request.id,
    )


def consent_for_request(session: Session, request: ConsentRequest) -> Consent | None:
    return session.scalar(
        select(Consent).where(Consent.request_id == request.id).order_by(Consent.granted_at.desc())
    )


def _end(session: Session, consent: Consent, status: str, reason: str) -> int:
    consent.status = status
    consent.revoked_at = utcnow() if status == "revoked" else None
    consent.ended_reason = reason
    templates = list(
        session.scalars(select(BiometricTemplate).where(BiometricTemplate.consent_id == consent.id))
    )
    for template in templates:
        session.delete(template)
    _bump(session, consent.service_id)
    return len(templates)


def revoke(
    session: Session, consent: Consent, *, actor: str, reason: str = "withdrawn by the subject"
) -> None:
    """Withdraw a consent: templates deleted now, the next request in every worker is refused."""
    if consent.status != "active":
        raise Conflict(f"this consent is already {consent.status}")
    if not reason.strip():
        raise InvalidInput("a revocation needs a reason", field="reason")
    deleted = _end(session, consent, "revoked", reason.strip())
    audit.record(
        session,
        "consent.revoked",
        actor=actor,
        service_id=consent.service_id,
        subject_type="consent",
        subject_id=consent.id,
        data={"subject": consent.subject_id, "templates_deleted": deleted, "reason": reason.strip()},
    )


def purge_expired(session: Session, now: dt.datetime | None = None) -> int:
    """End consents past their date and delete their templates; expire unanswered requests."""
    now = now or utcnow()
    ended = 0
    for consent in list(
        session.scalars(select(Consent).where(Consent.status == "active", Consent.expires_at <= now))
    ):
        deleted = _end(session, consent, "expired", "the consent reached its end date")
        audit.record(
            session,
            "consent.expired",
            actor="system",
            service_id=consent.service_id,
            subject_type="consent",
            subject_id=consent.id,
            data={"subject": consent.subject_id, "templates_deleted": deleted},
        )
        ended += 1
    stale = select(ConsentRequest).where(
        ConsentRequest.status.in_(("sent", "verified")), ConsentRequest.expires_at <= now
    )
    for request in list(session.scalars(stale)):
        request.status = "expired"
        audit.record(
            session,
            "consent.request_expired",
            actor="system",
            service_id=request.service_id,
            subject_type="consent_request",
            subject_id=request.id,
        )
    return ended


# --- reading (console, API) ---------------------------------------------------------------------


def request_summary(request: ConsentRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "status": request.status,
        "operations": list(request.operations),
        "subject_id": request.subject_id,
        "created_at": request.created_at.isoformat(),
        "expires_at": request.expires_at.isoformat(),
        "answered_at": request.answered_at.isoformat() if request.answered_at else None,
    }


def list_consents(
    session: Session, *, service_id: str | None = None, status: str | None = None, limit: int = 100
) -> list[Consent]:
    stmt = select(Consent).order_by(Consent.granted_at.desc()).limit(limit)
    if service_id:
        stmt = stmt.where(Consent.service_id == service_id)
    if status:
        stmt = stmt.where(Consent.status == status)
    return list(session.scalars(stmt))


def list_requests(
    session: Session, *, service_id: str | None = None, limit: int = 100
) -> list[ConsentRequest]:
    stmt = select(ConsentRequest).order_by(ConsentRequest.created_at.desc()).limit(limit)
    if service_id:
        stmt = stmt.where(ConsentRequest.service_id == service_id)
    return list(session.scalars(stmt))


def list_subjects(
    session: Session, *, service_id: str | None = None, limit: int = 100
) -> list[ConsentSubject]:
    stmt = select(ConsentSubject).order_by(ConsentSubject.created_at.desc()).limit(limit)
    if service_id:
        stmt = stmt.where(ConsentSubject.service_id == service_id)
    return list(session.scalars(stmt))


def find_subject(session: Session, keys: KeyStore, phone: str) -> list[ConsentSubject]:
    try:
        e164 = validate_cn_mobile(phone)
    except InvalidIdentifier:
        return []
    lookup = keys.lookup_hash(e164, "phone")
    return list(session.scalars(select(ConsentSubject).where(ConsentSubject.contact_lookup == lookup)))


def get_consent(session: Session, consent_id: str) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None:
        raise NotFound("no such consent")
    return consent


def template_counts(session: Session, consent_ids: list[str]) -> dict[str, int]:
    if not consent_ids:
        return {}
    rows = session.execute(
        select(BiometricTemplate.consent_id, func.count())
        .where(BiometricTemplate.consent_id.in_(consent_ids))
        .group_by(BiometricTemplate.consent_id)
    ).all()
    return {consent_id: count for consent_id, count in rows}
