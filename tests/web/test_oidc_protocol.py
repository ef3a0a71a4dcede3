"""The OpenID Connect provider's protocol paths, driven by Authlib's own client (OAuth2Session) against the
app on a real port, with a browser session held by `requests`; ID tokens checked by PyJWT against the keys
the discovery document's `jwks_uri` publishes. The clock is frozen: expiry is tested by moving it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.accounts import audit_events
from tests.web.browsing import LiveServer
from tests.web.oidc_parties import REDIRECT_URI, RelyingPartyClient, register_rp, signed_in_browser

TIMEOUT = 10


def _rp(live: LiveServer, client: RelyingPartyClient, **options: Any) -> OAuth2Session:
    options.setdefault("code_challenge_method", "S256")
    return OAuth2Session(
        client.client_id, client.secret, scope="openid profile", redirect_uri=REDIRECT_URI, **options
    )


def _authorize(
    live: LiveServer, rp: OAuth2Session, browser: requests.Session, **params: Any
) -> requests.Response:
    uri, _state = rp.create_authorization_url(live.url + "/oauth2/authorize", **params)
    return browser.get(uri, allow_redirects=False, timeout=TIMEOUT)


def _callback(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text[:500]
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def _token(live: LiveServer, rp: OAuth2Session, code: str, **params: Any) -> dict[str, Any]:
    return dict(rp.fetch_token(live.url + "/oauth2/token", code=code, **params))


def _verified_id_token(live: LiveServer, id_token: str, client_id: str) -> dict[str, Any]:
    """PyJWT, with the key from the JWKS the discovery document names (ES256 pinned)."""
    discovery = requests.get(live.url + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key.key,
        algorithms=["ES256"],
        audience=client_id,
        issuer=discovery["issuer"],
        # The frozen clock is in the past: exp is compared with it below, not with the wall clock.
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iat"] <= live.clock.now() < claims["exp"]
    return claims


def _userinfo(live: LiveServer, access_token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(live.url + "/oauth2/userinfo", headers=headers, timeout=TIMEOUT)


def _tokens(live: LiveServer, rp: OAuth2Session, browser: requests.Session) -> dict[str, Any]:
    """A whole code flow with PKCE: authorize in the browser, redeem the code."""
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, browser, nonce=generate_token(8), code_verifier=verifier))["code"]
    return _token(live, rp, code, code_verifier=verifier)


@pytest.fixture
def alice(live: LiveServer) -> requests.Session:
    phone = live.accounts.user_with_phone("alice")
    return signed_in_browser(live, "alice", phone)


@pytest.fixture
def wiki(live: LiveServer) -> RelyingPartyClient:
    return register_rp(live.app, "wiki", first_party=True)


def test_code_flow_gives_a_verified_id_token_with_how_the_user_signed_in(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    verifier, nonce = generate_token(48), generate_token(16)
    answer = _authorize(live, rp, alice, nonce=nonce, code_verifier=verifier, state="st-123")
    callback = _callback(answer)
    assert callback["state"] == "st-123"
    tokens = _token(live, rp, callback["code"], code_verifier=verifier)

    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    claims = _verified_id_token(live, tokens["id_token"], wiki.client_id)
    assert jwt.get_unverified_header(tokens["id_token"])["kid"]
    assert claims["nonce"] == nonce
    assert claims["aud"] == wiki.client_id and claims["azp"] == wiki.client_id
    assert claims["acr"] == "mfa" and {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["auth_time"] <= claims["iat"] and claims["sid"] and claims["preferred_username"] == "alice"
    info = requests.get(
        live.url + "/oauth2/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=TIMEOUT,
    )
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    for action in ("oidc.authorize", "oidc.token"):
        events = audit_events(live.app, action_prefix=action)
        assert [event["result"] for event in events] == ["success"], action
        assert events[0]["target"] == "alice client=wiki"


def test_client_secret_post_works_and_a_wrong_secret_is_refused(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki, token_endpoint_auth_method="client_secret_post")
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    wrong = _rp(live, RelyingPartyClient(wiki.client_id, "not-the-secret", wiki.name))
    with pytest.raises(OAuthError) as refused:
        _token(live, wrong, code, code_verifier=verifier)
    assert refused.value.error == "invalid_client"
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    assert "id_token" in _token(live, rp, code, code_verifier=verifier)


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://evil.example/callback", REDIRECT_URI + "/more", REDIRECT_URI + "?x=1", "https://rp.example/"],
)
def test_an_unregistered_redirect_uri_is_shown_on_tokenwards_page_never_followed(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient, redirect_uri: str
) -> None:
    rp = OAuth2Session(wiki.client_id, wiki.secret, scope="openid", redirect_uri=redirect_uri)
    answer = _authorize(live, rp, alice, nonce=generate_token(8))
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "not valid" in answer.text


def test_an_unknown_client_is_shown_on_tokenwards_page(live: LiveServer, alice: requests.Session) -> None:
    rp = OAuth2Session("0" * 32, "x", scope="openid", redirect_uri=REDIRECT_URI)
    answer = _authorize(live, rp, alice, nonce=generate_token(8))
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_a_public_client_must_use_pkce_s256(live: LiveServer, alice: requests.Session) -> None:
    app = register_rp(live.app, "spa", public=True, first_party=True)
    rp = OAuth2Session(app.client_id, None, scope="openid", redirect_uri=REDIRECT_URI)
    assert _callback(_authorize(live, rp, alice, nonce=generate_token(8)))["error"] == "invalid_request"
    plain = _callback(
        _authorize(live, rp, alice, nonce="p", code_challenge="a" * 43, code_challenge_method="plain")
    )
    assert plain["error"] == "invalid_request"

    rp = _rp(live, app, token_endpoint_auth_method="none")
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    with pytest.raises(OAuthError) as missing:
        _token(live, rp, code)
    assert missing.value.error == "invalid_request"
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    with pytest.raises(OAuthError) as wrong:
        _token(live, rp, code, code_verifier=generate_token(48))
    assert wrong.value.error == "invalid_grant"
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    assert "id_token" in _token(live, rp, code, code_verifier=verifier)


def test_a_confidential_clients_code_is_bound_to_its_pkce_challenge(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    with pytest.raises(OAuthError) as wrong:
        _token(live, rp, code, code_verifier=generate_token(48))
    assert wrong.value.error == "invalid_grant"
    # The failed attempt spent it: the right verifier comes too late.
    with pytest.raises(OAuthError) as spent:
        _token(live, rp, code, code_verifier=verifier)
    assert spent.value.error == "invalid_grant"


def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    tokens = _token(live, rp, code, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused:
        _token(live, rp, code, code_verifier=verifier)
    assert reused.value.error == "invalid_grant"
    assert _userinfo(live, tokens["access_token"]).status_code == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(live.url + "/oauth2/token", refresh_token=tokens["refresh_token"])
    reasons = [event["reason"] for event in audit_events(live.app, action_prefix="oidc.code")]
    assert "code_reused" in reasons


def test_a_code_expires_after_a_minute(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    verifier = generate_token(48)
    code = _callback(_authorize(live, rp, alice, nonce=generate_token(8), code_verifier=verifier))["code"]
    live.clock.advance(61)
    with pytest.raises(OAuthError) as expired:
        _token(live, rp, code, code_verifier=verifier)
    assert expired.value.error == "invalid_grant"


def test_a_code_is_bound_to_its_client(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    other = register_rp(live.app, "other", first_party=True)
    verifier = generate_token(48)
    code = _callback(
        _authorize(live, _rp(live, wiki), alice, nonce=generate_token(8), code_verifier=verifier)
    )["code"]
    with pytest.raises(OAuthError) as refused:
        _token(live, _rp(live, other), code, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"


def test_prompt_none_without_a_session_returns_login_required_to_the_client(
    live: LiveServer, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    callback = _callback(
        _authorize(live, rp, requests.Session(), nonce=generate_token(8), prompt="none", state="s1")
    )
    assert callback == {"error": "login_required", "state": "s1"}


def test_without_a_session_the_sign_in_page_serves_the_request(
    live: LiveServer, wiki: RelyingPartyClient
) -> None:
    answer = _authorize(
        live, _rp(live, wiki), requests.Session(), nonce=generate_token(8), login_hint="alice"
    )
    assert answer.status_code == 200 and "Sign in to continue to <strong>wiki</strong>" in answer.text
    assert 'value="alice"' in answer.text and 'data-next="/oauth2/authorize?' in answer.text


def test_acr_values_the_session_does_not_meet_force_a_step_up(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    answer = _authorize(live, rp, alice, nonce=generate_token(8), acr_values="phishing-resistant")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert 'data-step-up="alice"' in answer.text and "asks for a security key" in answer.text
    silent = _callback(
        _authorize(live, rp, alice, nonce=generate_token(8), acr_values="phishing-resistant", prompt="none")
    )
    assert silent["error"] == "interaction_required"
    # One of the listed values is enough.
    assert "code" in _callback(
        _authorize(live, rp, alice, nonce=generate_token(8), acr_values="phishing-resistant mfa")
    )


def test_a_client_that_requires_a_security_key_never_gets_a_weaker_token(
    live: LiveServer, alice: requests.Session
) -> None:
    strict = register_rp(live.app, "payroll", first_party=True, require="phishing-resistant")
    answer = _authorize(live, _rp(live, strict), alice, nonce=generate_token(8), acr_values="mfa")
    assert answer.status_code == 200 and 'data-step-up="alice"' in answer.text


def test_max_age_and_prompt_login_ask_for_a_fresh_sign_in(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    live.clock.advance(120)
    old = _authorize(live, rp, alice, nonce=generate_token(8), max_age=60)
    assert old.status_code == 200 and "data-step-up" in old.text, old.headers
    # Signed in again, the continuation no longer asks for max_age (max_age=0 would ask forever).
    assert "max_age" not in old.text and "tw_authenticated_after=" in old.text
    assert "code" in _callback(_authorize(live, rp, alice, nonce=generate_token(8), max_age=3600))
    again = _authorize(live, rp, alice, nonce=generate_token(8), prompt="login")
    assert again.status_code == 200 and "data-step-up" in again.text
    assert "prompt=login" not in again.text and "tw_authenticated_after=" in again.text


def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    first = _tokens(live, rp, alice)
    second = dict(rp.refresh_token(live.url + "/oauth2/token", refresh_token=first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    with pytest.raises(OAuthError) as reused:
        rp.refresh_token(live.url + "/oauth2/token", refresh_token=first["refresh_token"])
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        rp.refresh_token(live.url + "/oauth2/token", refresh_token=second["refresh_token"])


def test_another_clients_refresh_token_is_refused(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    other = register_rp(live.app, "other", first_party=True)
    verifier = generate_token(48)
    code = _callback(
        _authorize(live, _rp(live, wiki), alice, nonce=generate_token(8), code_verifier=verifier)
    )["code"]
    tokens = _token(live, _rp(live, wiki), code, code_verifier=verifier)
    with pytest.raises(OAuthError) as refused:
        _rp(live, other).refresh_token(live.url + "/oauth2/token", refresh_token=tokens["refresh_token"])
    assert refused.value.error == "invalid_grant"
    # Not spent by the refusal: its own client still rotates it.
    assert _rp(live, wiki).refresh_token(live.url + "/oauth2/token", refresh_token=tokens["refresh_token"])


def test_revocation_ends_the_clients_session(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    tokens = _tokens(live, rp, alice)
    answer = rp.revoke_token(live.url + "/oauth2/revoke", token=tokens["access_token"])
    assert answer.status_code == 200
    assert _userinfo(live, tokens["access_token"]).status_code == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(live.url + "/oauth2/token", refresh_token=tokens["refresh_token"])


def _post_form(live: LiveServer, browser: requests.Session, page: requests.Response, **fields: str) -> Any:
    """Submits the page's form as the browser would (its CSRF value, our Origin)."""
    action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    return browser.post(
        live.url + action,
        data={"csrf": browser.cookies["tw_csrf"], **fields},
        headers={"Origin": live.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def test_a_third_party_client_asks_for_consent_once(live: LiveServer, alice: requests.Session) -> None:
    shop = register_rp(live.app, "shop")
    rp = _rp(live, shop)
    page = _authorize(live, rp, alice, nonce=generate_token(8), state="s")
    assert page.status_code == 200 and "Allow shop to sign you in?" in page.text, page.headers
    assert "code" in _callback(_post_form(live, alice, page, decision="allow"))
    assert "code" in _callback(_authorize(live, rp, alice, nonce=generate_token(8)))


def test_consent_refused_goes_back_as_access_denied(live: LiveServer, alice: requests.Session) -> None:
    shop = register_rp(live.app, "shop")
    page = _authorize(live, _rp(live, shop), alice, nonce=generate_token(8), state="s")
    answer = _callback(_post_form(live, alice, page, decision="deny"))
    assert answer["error"] == "access_denied" and answer["state"] == "s"


def test_a_consent_without_the_csrf_value_is_refused(live: LiveServer, alice: requests.Session) -> None:
    shop = register_rp(live.app, "shop")
    page = _authorize(live, _rp(live, shop), alice, nonce=generate_token(8), state="s")
    forged = _post_form(live, alice, page, decision="allow", csrf="forged")
    assert forged.status_code == 400 and "Location" not in forged.headers


def test_rp_initiated_logout_ends_the_browser_session(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    rp = _rp(live, wiki)
    tokens = _tokens(live, rp, alice)
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://rp.example/bye",
        "state": "z",
    }
    page = alice.get(live.url + "/oauth2/logout", params=params, timeout=TIMEOUT)
    assert page.status_code == 200 and "Sign out of Tokenward?" in page.text
    answer = alice.post(
        page.url,
        data={"csrf": alice.cookies["tw_csrf"]},
        headers={"Origin": live.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "https://rp.example/bye?state=z"
    # The browser's session is over (prompt=none finds none), and so is the client's.
    assert (
        _callback(_authorize(live, rp, alice, nonce=generate_token(8), prompt="none"))["error"]
        == "login_required"
    )
    assert _userinfo(live, tokens["access_token"]).status_code == 401


def test_logout_never_redirects_off_the_clients_sites(
    live: LiveServer, alice: requests.Session, wiki: RelyingPartyClient
) -> None:
    params = {"client_id": wiki.client_id, "post_logout_redirect_uri": "https://evil.example/"}
    page = alice.get(live.url + "/oauth2/logout", params=params, timeout=TIMEOUT)
    answer = alice.post(
        page.url, data={"csrf": alice.cookies["tw_csrf"]}, headers={"Origin": live.url}, timeout=TIMEOUT
    )
    assert answer.status_code == 200 and "You are signed out" in answer.text and not answer.history
