"""The sign-in page works unchanged for directory users: the page, then its JSON calls as its script makes
them (`/web/session/login` with the directory password, `/web/session/verify` with the TOTP code; Origin and
the CSRF double submit), through the Flask test client; the session ends as the browser's cookies."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from server.http.auth import CSRF_COOKIE, CSRF_HEADER
from tests.accounts import Accounts, PhoneToken
from tests.directories.slapd import Slapd, password_of


def _page_post(client: FlaskClient, step: str, body: dict[str, Any] | None = None) -> Any:
    """What login.js sends: JSON, the page's Origin and the CSRF cookie's value echoed in a header."""
    csrf = client.get_cookie(CSRF_COOKIE)
    assert csrf is not None, "the sign-in page leaves a CSRF cookie"
    origin = client.application.extensions["tokenward"].settings.public_url
    return client.post(f"/web/session/{step}", json=body, headers={"Origin": origin, CSRF_HEADER: csrf.value})


def _phone_of_alice(accounts: Accounts) -> PhoneToken:
    first = accounts.client.post(
        "/api/v1/login", json={"username": "alice", "password": password_of("alice")}
    )
    assert first.status_code == 200 and first.json["status"] == "enroll", first.json
    return accounts.enroll_phone(first.json)


def test_the_sign_in_page_takes_a_directory_password_then_a_totp_code(
    accounts: Accounts, slapd: Slapd
) -> None:
    phone = _phone_of_alice(accounts)
    browser = accounts.app.test_client()
    page = browser.get("/login")
    assert page.status_code == 200
    assert 'id="password-form"' in page.get_data(as_text=True)

    wrong = _page_post(browser, "login", {"username": "alice", "password": "not the directory password"})
    assert wrong.status_code == 401 and wrong.json["code"] == "invalid_credentials"

    challenged = _page_post(browser, "login", {"username": "alice", "password": password_of("alice")})
    assert challenged.status_code == 200, challenged.json
    assert challenged.json["status"] == "second_factor" and "otp" in challenged.json["methods"]
    signed_in = _page_post(
        browser,
        "verify",
        {"transaction_id": challenged.json["transaction_id"], "otp": phone.code(accounts.clock.now())},
    )
    assert signed_in.status_code == 200, signed_in.json
    assert signed_in.json["status"] == "signed_in"

    me = browser.get("/api/v1/me")  # the access cookie
    assert me.status_code == 200 and me.json["username"] == "alice"
    assert browser.get("/account").status_code == 200

    slapd.stop()
    down = _page_post(browser, "login", {"username": "alice", "password": password_of("alice")})
    assert down.status_code == 503 and down.json["code"] == "directory_unavailable"
    assert down.json["title"]  # what the page shows (api.js: detail, else title)
    kept = _page_post(browser, "refresh")
    assert kept.status_code == 503 and kept.json["code"] == "directory_unavailable"
    assert browser.get("/api/v1/me").status_code == 200  # a 503 does not sign the browser out
