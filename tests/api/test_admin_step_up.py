"""What gives someone a way in needs the administrator's second factor answered recently, so that a stolen or
forgotten admin session cannot take over an account (review finding: an admin session older than the step-up
window reset another admin's password, issued a temporary code, and enrolled its own factor)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.config import Settings
from tests.accounts import Accounts, bearer

STEP_UP_MAX_AGE = 120  # shorter than an access token lives


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, step_up_max_age=STEP_UP_MAX_AGE)


WAY_IN = [
    ("POST", "/api/v1/admin/users", {"username": "mallory", "password": "a long password", "role": "admin"}),
    ("POST", "/api/v1/admin/users/bob/password", {"password": "attacker password 1"}),
    ("POST", "/api/v1/admin/users/bob/temporary-code", {"ttl": 3600}),
    ("POST", "/api/v1/admin/clients", {"name": "rogue-app"}),
    ("POST", "/api/v1/admin/clients/known-app/rotate-secret", None),
]


# What revives a way in (enabling) or destroys: refused to a stale session whatever the target (the session is
# checked before any lookup), allowed after a step-up like the above.
_PARAMETER = {"bob": "username", "known-app": "name", "0" * 32: "token_id"}
REVIVE_OR_DESTROY = [
    ("POST", "/api/v1/admin/users/bob/enable", {}),
    ("DELETE", "/api/v1/admin/users/bob", None),
    ("POST", f"/api/v1/admin/tokens/{'0' * 32}/enable", {}),
    ("DELETE", f"/api/v1/admin/tokens/{'0' * 32}", None),
    ("DELETE", "/api/v1/admin/clients/known-app", None),
]


def _send(client: FlaskClient, method: str, path: str, body: Any, session: dict[str, Any]) -> Any:
    return client.open(path, method=method, json=body, headers=bearer(session))


def test_an_old_admin_session_cannot_give_a_way_in_until_it_steps_up(
    accounts: Accounts, client: FlaskClient, settings: Settings
) -> None:
    clock = accounts.clock
    admin_phone = accounts.user_with_phone("root", role="admin")
    accounts.create_user("bob")
    session = accounts.full_session("root", admin_phone)
    known = _send(client, "POST", "/api/v1/admin/clients", {"name": "known-app"}, session)
    assert known.status_code == 201, known.json

    clock.advance(settings.step_up_max_age + 1)
    assert client.post("/api/v1/admin/users/bob/disable", headers=bearer(session)).status_code == 200
    for method, path, body in WAY_IN + REVIVE_OR_DESTROY:
        refused = _send(client, method, path, body, session)
        assert (refused.status_code, refused.json["code"]) == (403, "step_up_required"), (path, refused.json)
    assert client.get("/api/v1/admin/users", headers=bearer(session)).status_code == 200  # reading stays open
    signed_in = client.post("/api/v1/login", json={"username": "bob", "password": "attacker password 1"})
    assert signed_in.status_code == 401  # the refused reset changed nothing

    started = client.post("/api/v1/step-up", headers=bearer(session))
    assert started.status_code == 200, started.json
    answered = client.post(
        "/api/v1/verify",
        json={"transaction_id": started.json["transaction_id"], "otp": admin_phone.code(clock.now())},
    )
    assert answered.status_code == 200, answered.json
    for method, path, body in WAY_IN:
        allowed = _send(client, method, path, body, answered.json)
        assert allowed.status_code in (200, 201, 204), (path, allowed.json)
    for method, path, body in REVIVE_OR_DESTROY:
        allowed = _send(client, method, path, body, answered.json)
        assert allowed.status_code in (200, 204, 404), (path, allowed.json)  # no such token: 404


def test_the_document_says_which_operations_need_a_recent_second_factor(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    for method, path, _ in WAY_IN + REVIVE_OR_DESTROY:
        templated = re.sub(
            r"/(bob|known-app|0{32})(/|$)", lambda m: "/{" + _PARAMETER[m.group(1)] + "}" + m.group(2), path
        )
        operation = document["paths"][templated][method.lower()]
        assert "step_up_required" in operation["description"] + str(operation["responses"]["403"]), templated
