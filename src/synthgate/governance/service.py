"""Writes services and API keys."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from synthgate.audit import service as audit
from synthgate.db import utcnow
from synthgate.errors import Conflict, InvalidInput, NotFound, Unauthorized
from synthgate.governance.models import ApiKey, Service
from synthgate.identity.validators import InvalidIdentifier, parse_provider_code
from synthgate.keys import KeyStore, hash_api_secret

SCOPES = ("generate", "accounts")
"""``generate``: check/complete and the proxy; ``accounts``: register and verify end users, rules."""

PROFILES = ("cn", "eu", "cn+eu")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
KEY_PREFIX = "sg_"
SERVICE_SETTINGS = {"blocked_terms", "label_text", "label_position"}


def _validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    unknown = set(settings) - SERVICE_SETTINGS
    if unknown:
        raise InvalidInput(f"unknown service settings: {', '.join(sorted(unknown))}")
    terms = settings.get("blocked_terms", [])
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise InvalidInput("blocked_terms must be a list of non-empty strings")
    position = settings.get("label_position", "end")
    if position not in ("start", "end", "both"):
        raise InvalidInput("label_position must be start, end or both")
    label = settings.get("label_text")
    if label is not None:
        from synthgate.labeling.text import check_label_wording

        check_label_wording(label)
    return settings


def create_service(
    session: Session,
    keys: KeyStore,
    *,
    slug: str,
    name: str,
    provider_code: str,
    actor: str,
    filing_number: str | None = None,
    filing_link: str | None = None,
    profile: str = "cn",
    upstream_url: str | None = None,
    upstream_key: str | None = None,
    upstream_model: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Service:
    if not _SLUG.match(slug):
        raise InvalidInput("slug must be 2-63 lower-case letters, digits or dashes", field="slug")
    if not name.strip():
        raise InvalidInput("name must not be empty", field="name")
    try:
        code = parse_provider_code(provider_code).code
    except InvalidIdentifier as exc:
        raise InvalidInput(f"provider code: {exc}", field="provider_code") from exc
    if profile not in PROFILES:
        raise InvalidInput(f"profile must be one of {', '.join(PROFILES)}", field="profile")
    if filing_link and not filing_link.startswith(("https://", "http://")):
        raise InvalidInput("filing link must be an http(s) URL", field="filing_link")
    if upstream_url and not upstream_url.startswith(("https://", "http://")):
        raise InvalidInput("upstream URL must be an http(s) URL", field="upstream_url")
    if session.scalar(select(Service).where(Service.slug == slug)):
        raise Conflict(f"a service named {slug!r} exists already", field="slug")
    service = Service(
        slug=slug,
        name=name.strip(),
        provider_code=code,
        filing_number=filing_number,
        filing_link=filing_link,
        profile=profile,
        upstream_url=upstream_url.rstrip("/") if upstream_url else None,
        upstream_key_enc=keys.encrypt(upstream_key, "upstream-key") if upstream_key else None,
        upstream_model=upstream_model,
        settings=_validate_settings(dict(settings or {})),
    )
    session.add(service)
    session.flush()
    audit.record(
        session,
        "service.created",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={"slug": slug, "provider_code": code, "filing_number": filing_number, "profile": profile},
    )
    return service


def update_service_settings(
    session: Session, service: Service, settings: dict[str, Any], *, actor: str
) -> None:
    merged = _validate_settings({**service.settings, **settings})
    service.settings = merged
    audit.record(
        session,
        "service.settings_changed",
        actor=actor,
        service_id=service.id,
        subject_type="service",
        subject_id=service.id,
        data={"changed": sorted(settings)},
    )


def list_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.created_at)))


def get_service(session: Session, slug_or_id: str) -> Service:
    service = session.scalar(select(Service).where((Service.slug == slug_or_id) | (Service.id == slug_or_id)))
    if service is None:
        raise NotFound(f"no service {slug_or_id!r}")
    return service


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str
    """The full key, shown once and never stored."""


def create_api_key(
    session: Session, service: Service, *, actor: str, name: str = "", scopes: list[str] | None = None
) -> IssuedKey:
    chosen = list(scopes) if scopes else list(SCOPES)
    unknown = set(chosen) - set(SCOPES)
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(sorted(unknown))}; known: {', '.join(SCOPES)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        service_id=service.id,
        name=name,
        key_hash=hash_api_secret(secret),
        prefix=secret[:10],
        scopes=chosen,
        created_by=actor,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        "api_key.created",
        actor=actor,
        service_id=service.id,
        subject_type="api_key",
        subject_id=key.id,
        data={"prefix": key.prefix, "scopes": chosen, "name": name},
    )
    return IssuedKey(key=key, secret=secret)


def revoke_api_key(session: Session, key_id_or_prefix: str, *, actor: str) -> ApiKey:
    key = session.scalar(
        select(ApiKey).where((ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix))
    )
    if key is None:
        raise NotFound(f"no API key {key_id_or_prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            "api_key.revoked",
            actor=actor,
            service_id=key.service_id,
            subject_type="api_key",
            subject_id=key.id,
            data={"prefix": key.prefix},
        )
    return key


def list_api_keys(session: Session, service: Service | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if service is not None:
        query = query.where(ApiKey.service_id == service.id)
    return list(session.scalars(query))


def authenticate(session: Session, secret: str) -> tuple[ApiKey, Service]:
    """The key and its service for a presented secret; 401 for unknown, revoked or inactive."""
    if not secret.startswith(KEY_PREFIX):
        raise Unauthorized("unknown API key")
    row = session.execute(
        select(ApiKey, Service)
        .join(Service, Service.id == ApiKey.service_id)
        .where(ApiKey.key_hash == hash_api_secret(secret))
    ).first()
    if row is None:
        raise Unauthorized("unknown API key")
    key, service = row
    if key.revoked_at is not None:
        raise Unauthorized("this API key was revoked")
    if not service.active:
        raise Unauthorized("the service of this API key is not active")
    return key, service
