"""A page opened at an address that is not the configured public URL (issue 14, item 1): the sign-in is
refused, and the page says which address to open and what the operator sets, instead of "out of date"."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from server.clock import FrozenClock
from server.config import Settings
from tests.web.browsing import PHONE, LiveServer
from tests.web.conftest import serve_live


@pytest.fixture
def elsewhere(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    """The app on a real port whose public URL names 127.0.0.1, opened by the browser as localhost."""
    with serve_live(settings, clock, public_host="127.0.0.1") as server:
        yield server


def test_the_refusal_says_which_address_to_open(browser: Browser, elsewhere: LiveServer) -> None:
    elsewhere.accounts.create_user("alice")
    context = browser.new_context(viewport=PHONE, locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto(elsewhere.url + "/login")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Continue").click()
        public = elsewhere.url.replace("localhost", "127.0.0.1")
        expect(page.get_by_role("alert")).to_have_text(
            re.compile(
                rf"This server's address is {re.escape(public)}: open it there\..*TOKENWARD_PUBLIC_URL"
            )
        )
    finally:
        context.close()
