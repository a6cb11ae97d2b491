"""Console fixtures: operators of each role, logged in through the real login form."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from synthgate.gateway.sdk import Gateway
from synthgate.operators import service as operators

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')


def make_operator(gateway: Gateway, username: str, role: str, *, must_change_password: bool = False) -> str:
    """Create an operator through the service; returns its password."""
    password = f"{username}-correct-horse-battery"
    with gateway.db.session() as session:
        operators.create_operator(
            session,
            username=username,
            role=role,
            actor="test",
            password=password,
            must_change_password=must_change_password,
        )
    return password


def login_token(client: TestClient) -> str:
    page = client.get("/console/login", follow_redirects=False)
    assert page.status_code == 200, page.text
    match = _LOGIN_TOKEN.search(page.text)
    assert match, "no login token on the login page"
    return match.group(1)


def post_login(
    client: TestClient, username: str, password: str, totp_code: str = "", next_path: str = ""
) -> httpx.Response:
    fields = {"username": username, "password": password, "totp_code": totp_code, "next": next_path}
    return client.post(
        "/console/login", data={**fields, "login_token": login_token(client)}, follow_redirects=False
    )


def csrf_token(client: TestClient, path: str = "/console/password") -> str:
    page = client.get(path)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


@dataclass
class LoggedIn:
    username: str
    password: str
    role: str
    csrf: str


@pytest.fixture
def login_as(client: TestClient, gateway: Gateway) -> Callable[[str], LoggedIn]:
    """``login_as("reviewer")``: create an operator with that role (once) and log the client in as them."""
    created: dict[str, str] = {}

    def do_login(role: str) -> LoggedIn:
        username = f"{role}-op"
        if username not in created:
            created[username] = make_operator(gateway, username, role)
        client.cookies.clear()
        response = post_login(client, username, created[username])
        assert response.status_code == 303, response.text
        return LoggedIn(username, created[username], role, csrf_token(client))

    return do_login
