"""What ties a relying party's code and refresh token to where they came from: a code dies with the browser
session it was issued from; a refresh token issued to a client works only for that client, authenticated, at
the endpoint that issued it, and never for more scope than was granted; hostile numbers in the authorization
request are no 500."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from server.db import db
from server.services import oidc as oidc_service
from server.services import users
from server.services.actors import Actor
from tests.accounts import (
    PhoneToken,
    audit_events,
    basic,
    bearer,
    login_form_credentials,
    missing_service,
    until_waiting_for_a_lock,
)
from tests.web.browsing import LiveServer
from tests.web.oidc_parties import REDIRECT_URI, RelyingPartyClient, register_rp, signed_in_browser

TIMEOUT = 10


def _rp(client: RelyingPartyClient, scope: str | None = "openid profile") -> OAuth2Session:
    return OAuth2Session(
        client.client_id, client.secret, scope=scope, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )


def _code(live: LiveServer, rp: OAuth2Session, browser: requests.Session, verifier: str) -> str:
    uri, _state = rp.create_authorization_url(
        live.url + "/oauth2/authorize", nonce=generate_token(8), code_verifier=verifier
    )
    answer = browser.get(uri, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, answer.text[:500]
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def _tokens(live: LiveServer, rp: OAuth2Session, browser: requests.Session) -> dict[str, Any]:
    verifier = generate_token(48)
    code = _code(live, rp, browser, verifier)
    return dict(rp.fetch_token(live.url + "/oauth2/token", code=code, code_verifier=verifier))


def _refresh_at_token_endpoint(rp: OAuth2Session, live: LiveServer, token: str, **params: Any) -> Any:
    return dict(rp.refresh_token(live.url + "/oauth2/token", refresh_token=token, **params))


def _api_refresh(live: LiveServer, token: str, headers: dict[str, str] | None = None) -> Any:
    return live.accounts.client.post(
        "/api/v1/token/refresh", json={"refresh_token": token}, headers=headers or {}
    )


@pytest.fixture
def phone(live: LiveServer) -> PhoneToken:
    return live.accounts.user_with_phone("alice")


@pytest.fixture
def alice(live: LiveServer, phone: PhoneToken) -> requests.Session:
    return signed_in_browser(live, "alice", phone)


@pytest.fixture
def wiki(live: LiveServer) -> RelyingPartyClient:
    return register_rp(live.app, "wiki", first_party=True)


def _end_by_password_reset(live: LiveServer, browser: requests.Session, admin: dict[str, Any]) -> None:
    answer = live.accounts.client.post(
        "/api/v1/admin/users/alice/password", json={"password": "a new password 1"}, headers=bearer(admin)
    )
    assert answer.status_code in (200, 204), answer.json


def _end_by_logout(live: LiveServer, browser: requests.Session, admin: dict[str, Any]) -> None:
    headers = {"Origin": live.url, "X-CSRF-Token": browser.cookies["tw_csrf"]}
    answer = browser.post(live.url + "/web/session/logout", json={}, headers=headers, timeout=TIMEOUT)
    assert answer.status_code in (200, 204), answer.text


def _end_by_disable(live: LiveServer, browser: requests.Session, admin: dict[str, Any]) -> None:
    answer = live.accounts.client.post("/api/v1/admin/users/alice/disable", headers=bearer(admin))
    assert answer.status_code == 200, answer.json


@pytest.mark.parametrize(
    ("end_session", "reason"),
    [
        (_end_by_password_reset, "session_ended"),
        (_end_by_logout, "session_ended"),
        (_end_by_disable, "user_disabled"),
    ],
)
def test_a_code_dies_with_the_browser_session_it_was_issued_from(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient, end_session: Any, reason: str
) -> None:
    admin = live.accounts.admin_session()  # first: signing in moves the clock on
    rp = _rp(wiki)
    verifier = generate_token(48)
    code = _code(live, rp, alice, verifier)
    end_session(live, alice, admin)
    with pytest.raises(OAuthError) as refused:
        rp.fetch_token(live.url + "/oauth2/token", code=code, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"
    refusals = [e["reason"] for e in audit_events(live.app, action_prefix="oidc.code") if e["reason"]]
    assert refusals == [reason]


def test_a_relying_partys_refresh_token_works_only_at_the_token_endpoint(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    tokens = _tokens(live, _rp(wiki), alice)
    assert wiki.secret is not None
    for headers in (None, basic(wiki.client_id, wiki.secret)):
        refused = _api_refresh(live, tokens["refresh_token"], headers)
        assert refused.status_code == 401 and refused.json["code"] == "invalid_refresh_token"
    # Not spent by the refusals.
    assert _refresh_at_token_endpoint(_rp(wiki), live, tokens["refresh_token"])["access_token"]


def test_a_one_step_clients_refresh_token_needs_that_clients_credentials(
    live: LiveServer, phone: PhoneToken, wiki: RelyingPartyClient
) -> None:
    verified = live.accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(live.clock.now())}
    )
    assert verified.status_code == 200, verified.json
    token = verified.json["refresh_token"]
    missing = _api_refresh(live, token)
    assert missing.status_code == 401 and missing.json["code"] == "invalid_client"
    assert wiki.secret is not None
    another = _api_refresh(live, token, basic(wiki.client_id, wiki.secret))
    assert another.status_code == 401 and another.json["code"] == "invalid_refresh_token"
    wrong = _api_refresh(live, token, basic(wiki.client_id, "not the secret"))
    assert wrong.status_code == 401 and wrong.json["code"] == "invalid_client"
    reasons = [e["reason"] for e in audit_events(live.app, action_prefix="session.refresh")]
    assert {"client_authentication_required", "not_this_clients_session"} <= set(reasons)
    # Unspent: its own client rotates it.
    rotated = _api_refresh(live, token, login_form_credentials(live.app))
    assert rotated.status_code == 200 and rotated.json["refresh_token"] != token


def test_the_token_endpoint_refreshes_no_session_it_did_not_issue(
    live: LiveServer, phone: PhoneToken, wiki: RelyingPartyClient
) -> None:
    """A one-step (single-factor) session of the same client is no relying party's session."""
    assert wiki.secret is not None
    verified = live.accounts.client.post(
        "/api/v1/verify",
        json={"username": "alice", "otp": phone.code(live.clock.now())},
        headers=basic(wiki.client_id, wiki.secret),
    )
    assert verified.status_code == 200 and verified.json["acr"] == "single-factor", verified.json
    with pytest.raises(OAuthError) as refused:
        _refresh_at_token_endpoint(_rp(wiki), live, verified.json["refresh_token"])
    assert refused.value.error == "invalid_grant"
    reasons = [e["reason"] for e in audit_events(live.app, action_prefix="oidc.refresh")]
    assert reasons == ["not_this_clients_session"]


def test_a_refresh_asks_for_no_more_scope_than_was_granted(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    tokens = _tokens(live, _rp(wiki, scope="openid"), alice)
    with pytest.raises(OAuthError) as broader:
        _refresh_at_token_endpoint(_rp(wiki), live, tokens["refresh_token"], scope="openid profile")
    assert broader.value.error == "invalid_scope"
    same = _refresh_at_token_endpoint(_rp(wiki), live, tokens["refresh_token"], scope="openid")
    assert same["scope"] == "openid"
    # No scope asked for: the scope granted (RFC 6749 section 6).
    assert _refresh_at_token_endpoint(_rp(wiki, scope=None), live, same["refresh_token"])["scope"] == "openid"


def test_numbers_that_are_not_ascii_digits_are_ignored_not_a_500(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    """`"²".isdigit()` is true, yet int() refuses it; so it does thousands of digits."""
    for name in ("max_age", "tw_authenticated_after"):
        for value in ("\u00b2", "\u0663", "9" * 5000):
            uri, _state = _rp(wiki).create_authorization_url(
                live.url + "/oauth2/authorize", nonce=generate_token(8), code_verifier=generate_token(48)
            )
            answer = alice.get(uri, params={name: value}, allow_redirects=False, timeout=TIMEOUT)
            assert answer.status_code == 302, (name, value[:8], answer.status_code)
            assert "code=" in answer.headers["Location"]


def test_a_user_disabled_while_their_code_is_redeemed_keeps_no_session(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disable lands between the token endpoint's reading of the user and its commit: it waits for the
    commit, then revokes the family the code started. Before, it committed in between, its revocation missed
    the family, and the tokens worked again once the user was enabled."""
    with live.app.app_context():
        if db.engine.dialect.name == "sqlite":
            missing_service("TOKENWARD_TEST_DATABASE_URL (PostgreSQL) is not set")
        engine = create_engine(db.engine.url)
    rt, console = live.app.extensions["tokenward"], Actor.console()
    rp, verifier = _rp(wiki), generate_token(48)
    code = _code(live, rp, alice, verifier)

    def set_disabled(disabled: bool) -> None:
        with Session(engine) as other:
            users.set_disabled(other, rt, username="alice", disabled=disabled, actor=console)

    real_check = oidc_service._source_session_live
    disabling = threading.Thread(target=set_disabled, args=(True,))

    def checked_then_disabled(*args: Any, **kwargs: Any) -> Any:
        stands = real_check(*args, **kwargs)  # the user was read enabled
        disabling.start()
        until_waiting_for_a_lock(engine, disabling)  # it waits for this exchange, or it is done
        return stands

    monkeypatch.setattr(oidc_service, "_source_session_live", checked_then_disabled)
    try:
        tokens = dict(rp.fetch_token(live.url + "/oauth2/token", code=code, code_verifier=verifier))
        disabling.join(30)
        set_disabled(False)
    finally:
        engine.dispose()
    info = requests.get(
        live.url + "/oauth2/userinfo",
        headers=bearer({"access_token": tokens["access_token"]}),
        timeout=TIMEOUT,
    )
    assert info.status_code == 401, info.text


def test_userinfo_answers_a_relying_partys_session_with_the_scope_it_was_granted(
    live: LiveServer, alice: requests.Session, phone: PhoneToken, wiki: RelyingPartyClient
) -> None:
    """A login form's one-step session (an application that knows who signed in already) is not a relying
    party's: userinfo refuses it (a red-team run read the profile with it). A relying party granted `openid`
    alone gets `sub` alone."""
    live.accounts.clock.advance(phone.period)
    code = phone.code(live.accounts.clock.now())
    one_step = live.accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": code})
    assert one_step.status_code == 200, one_step.json
    refused = requests.get(live.url + "/oauth2/userinfo", headers=bearer(one_step.json), timeout=TIMEOUT)
    assert refused.status_code == 401 and refused.json() == {"error": "invalid_token"}

    tokens = _tokens(live, _rp(wiki, scope="openid"), alice)
    info = requests.get(live.url + "/oauth2/userinfo", headers=bearer(tokens), timeout=TIMEOUT)
    assert info.status_code == 200 and set(info.json()) == {"sub"}, info.text
