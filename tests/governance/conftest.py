"""Console operators for the governance pages, logged in through the real login form."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from synthgate.gateway.sdk import Gateway
from tests.web.conftest import LoggedIn, csrf_token, make_operator, post_login


@pytest.fixture
def login_as(client: TestClient, gateway: Gateway) -> Callable[[str], LoggedIn]:
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
