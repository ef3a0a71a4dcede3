"""Under an https public URL the pages' cookies are `__Host-` cookies (Secure, Path=/, no Domain) and every
response carries Strict-Transport-Security; under plain http (local development) neither, so browsers keep
the cookies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from tests.accounts import Accounts, dispose_app

HTTPS_ORIGIN = "https://auth.tokenward.test"
HOST_COOKIES = {"__Host-tw_access", "__Host-tw_refresh", "__Host-tw_csrf"}
ONE_YEAR_SECONDS = 365 * 24 * 3600


@pytest.fixture
def https_app(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    app = create_app(replace(settings, public_url=HTTPS_ORIGIN), clock=clock)
    yield app
    dispose_app(app)


def _set_cookies(response: TestResponse) -> dict[str, list[str]]:
    """name -> the attributes of its Set-Cookie header, lower case (`secure`, `path=/`, …)."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        name_value, *attributes = [part.strip() for part in header.split(";")]
        cookies[name_value.split("=", 1)[0]] = [attribute.lower() for attribute in attributes]
    return cookies


def _check_host_cookie(attributes: list[str]) -> None:
    assert "secure" in attributes and "path=/" in attributes
    assert not any(attribute.startswith("domain=") for attribute in attributes)


def _sign_in_through_the_pages(client: FlaskClient, base_url: str) -> tuple[TestResponse, TestResponse, str]:
    """The sign-in page (which leaves the CSRF cookie), then the password form: alice has no token yet, so
    her enroll-only session becomes cookies."""
    page = client.get("/login", base_url=base_url)
    csrf_name = next(name for name in _set_cookies(page) if name.endswith("tw_csrf"))
    csrf = client.get_cookie(csrf_name, domain=base_url.split("://")[1].split(":")[0])
    assert csrf is not None
    signed_in = client.post(
        "/web/session/login",
        json={"username": "alice", "password": "correct horse battery"},
        headers={"Origin": base_url, "X-CSRF-Token": csrf.value},
        base_url=base_url,
    )
    assert signed_in.status_code == 200, signed_in.json
    return page, signed_in, csrf.value


def test_https_pages_set_host_prefixed_cookies_that_sign_in(https_app: Flask, clock: FrozenClock) -> None:
    client = https_app.test_client()
    Accounts(https_app, client, clock).create_user("alice")
    page, signed_in, csrf = _sign_in_through_the_pages(client, HTTPS_ORIGIN)

    _check_host_cookie(_set_cookies(page)["__Host-tw_csrf"])
    session_cookies = _set_cookies(signed_in)
    assert set(session_cookies) >= HOST_COOKIES
    for name in HOST_COOKIES:
        _check_host_cookie(session_cookies[name])
    assert not {"tw_access", "tw_refresh", "tw_csrf"} & set(session_cookies)

    # The server reads the prefixed names: the API, the refresh and the sign-out of the pages.
    me = client.get("/api/v1/me", base_url=HTTPS_ORIGIN)
    assert me.status_code == 200 and me.json is not None and me.json["username"] == "alice"
    csrf_cookie = client.get_cookie("__Host-tw_csrf", domain="auth.tokenward.test")
    assert csrf_cookie is not None and csrf_cookie.value != csrf  # a new value with every sign-in
    headers = {"Origin": HTTPS_ORIGIN, "X-CSRF-Token": csrf_cookie.value}
    refreshed = client.post("/web/session/refresh", headers=headers, base_url=HTTPS_ORIGIN)
    assert refreshed.status_code == 200, refreshed.json
    rotated = client.get_cookie("__Host-tw_csrf", domain="auth.tokenward.test")
    assert rotated is not None
    headers["X-CSRF-Token"] = rotated.value
    assert client.post("/web/session/logout", headers=headers, base_url=HTTPS_ORIGIN).status_code == 204
    assert client.get("/api/v1/me", base_url=HTTPS_ORIGIN).status_code == 401


@pytest.mark.parametrize(
    "path", ["/login", "/api/v1/openapi.json", "/healthz", "/.well-known/jwks.json", "/no/such/page"]
)
def test_https_answers_carry_hsts(https_app: Flask, path: str) -> None:
    response = https_app.test_client().get(path, base_url=HTTPS_ORIGIN)
    hsts = response.headers.get("Strict-Transport-Security", "")
    assert hsts.startswith("max-age=")
    assert int(hsts.removeprefix("max-age=").split(";")[0]) >= ONE_YEAR_SECONDS


def test_plain_http_keeps_unprefixed_cookies_without_hsts(app: Flask, accounts: Accounts) -> None:
    accounts.create_user("alice")
    page, signed_in, _ = _sign_in_through_the_pages(accounts.client, "http://localhost:5000")
    cookies = {**_set_cookies(page), **_set_cookies(signed_in)}
    assert {"tw_access", "tw_refresh", "tw_csrf"} <= set(cookies)
    assert not any(name.startswith("__Host-") for name in cookies)
    assert all("secure" not in attributes for attributes in cookies.values())
    assert "Strict-Transport-Security" not in page.headers
    assert accounts.client.get("/api/v1/me").status_code == 200
