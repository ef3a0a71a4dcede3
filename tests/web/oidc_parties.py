"""Helpers of the OpenID Connect tests: a registered relying party, and a browser session held by
`requests` (the cookies the pages would hold), signed in with password and phone code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask

from server.db import db
from server.services import clients
from server.services.audit import Actor
from tests.accounts import PASSWORD, PhoneToken
from tests.web.browsing import LiveServer

REDIRECT_URI = "https://rp.example/callback"


@dataclass(frozen=True)
class RelyingPartyClient:
    client_id: str
    secret: str | None
    name: str


def register_rp(app: Flask, name: str, **options: Any) -> RelyingPartyClient:
    options.setdefault("redirect_uris", [REDIRECT_URI])
    with app.app_context():
        created = clients.add_client(
            db.session, app.extensions["tokenward"], name=name, actor=Actor.console(), **options
        )
        return RelyingPartyClient(created.client.id, created.secret, name)


def signed_in_browser(live: LiveServer, username: str, phone: PhoneToken) -> requests.Session:
    """The cookies a browser holds after signing in on the pages (password, then the phone's code)."""
    http = requests.Session()
    assert http.get(live.url + "/login", timeout=10).status_code == 200

    def post(step: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Origin": live.url, "X-CSRF-Token": http.cookies["tw_csrf"]}
        answer = http.post(f"{live.url}/web/session/{step}", json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    challenge = post("login", {"username": username, "password": PASSWORD})
    post("verify", {"transaction_id": challenge["transaction_id"], "otp": phone.code(live.clock.now())})
    live.clock.advance(phone.period)  # the next sign-in gets a fresh code
    return http
