"""The OpenID Connect pages in Chromium: the administration's client list, and the consent page a
third-party client gets once (the answer posts on to the application: the page's CSP must let it)."""

from __future__ import annotations

import re

from authlib.integrations.requests_client import OAuth2Session
from playwright.sync_api import Page, expect

from tests.web.browsing import LiveServer, PageWatch, oathtool_code, sign_in_with_code
from tests.web.oidc_parties import REDIRECT_URI, register_rp


def test_the_admin_page_lists_clients_without_secrets(page: Page, live: LiveServer, watch: PageWatch) -> None:
    phone = live.accounts.user_with_phone("root", role="admin")
    wiki = register_rp(live.app, "wiki", first_party=True, require="phishing-resistant")
    sign_in_with_code(page, live, "root", phone.secret)
    page.goto("/admin/clients")
    row = page.get_by_role("row").filter(has_text="wiki")
    expect(row).to_contain_text(wiki.client_id)
    expect(row).to_contain_text(REDIRECT_URI)
    expect(row).to_contain_text("Confidential, first-party")
    expect(row).to_contain_text("phishing-resistant")
    assert wiki.secret and wiki.secret not in page.content()


def test_consent_is_asked_once_then_remembered(page: Page, live: LiveServer, watch: PageWatch) -> None:
    phone = live.accounts.user_with_phone("alice")
    shop = register_rp(live.app, "shop")
    sign_in_with_code(page, live, "alice", phone.secret)
    rp = OAuth2Session(shop.client_id, shop.secret, scope="openid profile", redirect_uri=REDIRECT_URI)
    uri, _state = rp.create_authorization_url(live.url + "/oauth2/authorize", nonce="n1", state="s1")
    # Nothing listens at the application: the redirect to it is caught here.
    page.route("https://rp.example/**", lambda route: route.fulfill(status=200, body="back at the app"))
    page.goto(uri)
    expect(page.get_by_role("heading", name="Allow shop to sign you in?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page).to_have_url(re.compile(r"^https://rp\.example/callback\?code=[^&]+&state=s1$"))

    uri, _state = rp.create_authorization_url(live.url + "/oauth2/authorize", nonce="n2", state="s2")
    page.evaluate("(uri) => window.location.assign(uri)", uri)  # from a page: the request is routed
    expect(page).to_have_url(re.compile(r"^https://rp\.example/callback\?code=[^&]+&state=s2$"))


def test_prompt_login_asks_for_the_second_factor_again(
    page: Page, live: LiveServer, watch: PageWatch
) -> None:
    phone = live.accounts.user_with_phone("alice")
    wiki = register_rp(live.app, "wiki", first_party=True)
    sign_in_with_code(page, live, "alice", phone.secret)
    rp = OAuth2Session(wiki.client_id, wiki.secret, scope="openid", redirect_uri=REDIRECT_URI)
    uri, _state = rp.create_authorization_url(
        live.url + "/oauth2/authorize", nonce="n1", state="s1", prompt="login"
    )
    page.route("https://rp.example/**", lambda route: route.fulfill(status=200, body="back at the app"))
    page.goto(uri)
    expect(page.locator("#application")).to_contain_text("Sign in to continue to wiki")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(page.locator("#factor-username")).to_have_text("alice")
    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    code.fill(oathtool_code(phone.secret, live.clock.now()))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"^https://rp\.example/callback\?code=[^&]+&state=s1$"))
