"""Request dependencies shared by the routers: the gateway, API-key auth with scopes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from synthgate.errors import Forbidden, Unauthorized
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import ApiKey, Service

bearer = HTTPBearer(auto_error=False, description="A service API key: `Authorization: Bearer sg_…`")


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    service: Service


def authenticate_key(gateway: Gateway, secret: str | None, scope: str) -> Caller:
    if not secret:
        raise Unauthorized("missing API key (Authorization: Bearer sg_…)")
    with gateway.db.session() as session:
        key, service = governance.authenticate(session, secret)
        session.expunge_all()
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope", code="forbidden.scope")
    return Caller(key=key, service=service)


def require_scope(scope: str) -> Callable[..., Caller]:
    def dependency(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        gateway: Gateway = Depends(get_gateway),
    ) -> Caller:
        return authenticate_key(gateway, credentials.credentials if credentials else None, scope)

    return dependency
