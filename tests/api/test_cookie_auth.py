"""The web pages' cookie: accepted like a Bearer token, but state changes need the CSRF double submit."""

from __future__ import annotations

from server.http.auth import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from tests.accounts import Accounts


def _cookie_client(accounts: Accounts) -> str:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    accounts.client.set_cookie(ACCESS_COOKIE, session["access_token"])
    accounts.client.set_cookie(CSRF_COOKIE, "csrf-value")
    return phone.token_id


def test_cookie_authenticates_reads(accounts: Accounts) -> None:
    _cookie_client(accounts)
    assert accounts.client.get("/api/v1/me").json["username"] == "alice"


def test_state_change_without_csrf_header_is_refused(accounts: Accounts) -> None:
    token_id = _cookie_client(accounts)
    refused = accounts.client.delete(f"/api/v1/tokens/{token_id}")
    assert refused.status_code == 403
    assert refused.json["code"] == "csrf_failed"
    wrong = accounts.client.delete(f"/api/v1/tokens/{token_id}", headers={CSRF_HEADER: "other"})
    assert wrong.status_code == 403


def test_state_change_from_another_origin_is_refused(accounts: Accounts) -> None:
    token_id = _cookie_client(accounts)
    headers = {CSRF_HEADER: "csrf-value", "Origin": "https://evil.example"}
    assert accounts.client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 403


def test_state_change_with_the_double_submit_passes(accounts: Accounts) -> None:
    token_id = _cookie_client(accounts)
    headers = {CSRF_HEADER: "csrf-value", "Origin": "http://localhost:5000"}
    assert accounts.client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204


def test_bearer_requests_need_no_csrf(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    assert accounts.client.delete(f"/api/v1/tokens/{phone.token_id}", headers=headers).status_code == 204
