"""A real relying party nobody here wrote: Debian's Apache with mod_auth_openidc protects a page; Chromium
opens it, is sent to a real `tokenward serve`, signs in (password + authenticator-app code, or password +
security key through Chromium's virtual authenticator) and lands back on the page, which shows the claims
Apache passes on. A missing apache2 or module fails these tests (tests/web/apache_rp.py)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.serve_process import TOKENWARD, ServeProcess, add_user, enroll_token, server_env
from tests.web.apache_rp import ApacheRelyingParty, apache_binary, free_port
from tests.web.browsing import DESKTOP, add_virtual_authenticator, sign_in_with_password

pytestmark = pytest.mark.slow


@dataclass
class Provider:
    server: ServeProcess
    env: dict[str, str]
    url: str


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    apache_binary()  # fail first, and plainly, when Apache or the module is missing
    port = free_port()
    url = f"http://localhost:{port}"
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=f"sqlite:///{tmp_path / 'tokenward.db'}",
        encryption_key=secrets.token_hex(32),
        public_url=url,
        rate_limits="off",
    )
    argv = [TOKENWARD, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with ServeProcess.launch(argv, env, log_path=tmp_path / "serve.log") as server:
        yield Provider(server, env, url)


def _register(provider: Provider, redirect_uri: str, *extra: str) -> tuple[str, str]:
    argv = [TOKENWARD, "client", "add", "intranet", "--redirect-uri", redirect_uri, "--first-party", "--json"]
    result = subprocess.run(
        [*argv, *extra], env=provider.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return created["client_id"], created["client_secret"]


@pytest.fixture
def page(browser: Browser, provider: Provider) -> Iterator[Page]:
    context = browser.new_context(base_url=provider.url, viewport=DESKTOP, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def _apache(provider: Provider, *extra: str) -> ApacheRelyingParty:
    port = free_port()
    client_id, secret = _register(provider, ApacheRelyingParty.redirect_uri_for(port), *extra)
    return ApacheRelyingParty(provider_url=provider.url, client_id=client_id, client_secret=secret, port=port)


def test_apache_signs_in_with_password_and_authenticator_app(provider: Provider, page: Page) -> None:
    add_user(provider.env, "alice")
    phone = enroll_token(requests.Session(), provider.url, "alice", kind="totp")
    assert phone.activated_step is not None
    with _apache(provider).start() as apache:
        page.goto(apache.url + "/protected/index.shtml")
        expect(page).to_have_url(re.compile(rf"^{re.escape(provider.url)}/oauth2/authorize\?"))
        expect(page.locator("#application")).to_contain_text("Sign in to continue to intranet")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Continue").click()
        # The next time step's code: the activation spent this one, and the server accepts one step ahead.
        page.get_by_label("Code from your authenticator app").fill(phone.at(phone.activated_step + 1))
        page.get_by_role("button", name="Verify").click()

        expect(page).to_have_url(apache.url + "/protected/index.shtml")
        expect(page.locator("#acr")).to_have_text("mfa")
        expect(page.locator("#user")).to_have_text("alice")
        expect(page.locator("#sub")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))

        # The application's session ends; Tokenward's does not. Its SameSite=Strict cookies do not come with
        # the redirect from another site, so the sign-in page renews the session from its refresh cookie
        # and goes on: back at the application without typing anything.
        page.context.clear_cookies(domain="127.0.0.1")
        page.goto(apache.url + "/protected/index.shtml")
        expect(page).to_have_url(apache.url + "/protected/index.shtml")
        expect(page.locator("#user")).to_have_text("alice")


def test_apache_asks_for_a_security_key_and_gets_one(provider: Provider, page: Page) -> None:
    add_virtual_authenticator(page)
    add_user(provider.env, "bob")
    sign_in_with_password(page, "bob")
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Security key")).click()
    page.get_by_role("textbox", name="Name (optional)").fill("Blue key")
    page.get_by_role("button", name="Add security key").click()
    expect(page.get_by_role("status")).to_have_text("“Blue key” was added.")
    page.get_by_role("button", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    with _apache(provider, "--require", "phishing-resistant").start() as apache:
        page.goto(apache.url + "/protected/index.shtml")
        expect(page.locator("#application")).to_contain_text("intranet, which asks for a security key")
        page.get_by_label("Username").fill("bob")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Use security key").click()

        expect(page).to_have_url(apache.url + "/protected/index.shtml")
        expect(page.locator("#acr")).to_have_text("phishing-resistant")
        expect(page.locator("#user")).to_have_text("bob")
