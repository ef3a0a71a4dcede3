"""A page opened at an address that is not the configured public URL (issue 14, item 1): the sign-in is
refused, and the page says which address to open and what the operator sets, instead of "out of date"."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from werkzeug.serving import make_server

from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from tests.accounts import Accounts, dispose_app
from tests.web.browsing import PHONE, LiveServer


@pytest.fixture
def elsewhere(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    """The app on a real port whose public URL names 127.0.0.1, opened by the browser as localhost."""
    apps: dict[str, Any] = {}

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        answer = apps["app"](environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            getattr(answer, "close", lambda: None)()

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    app = create_app(replace(settings, public_url=f"http://127.0.0.1:{server.server_port}"), clock=clock)
    apps["app"] = app
    thread = threading.Thread(target=server.serve_forever, name="wrong-origin-server", daemon=True)
    thread.start()
    try:
        url = f"http://localhost:{server.server_port}"
        yield LiveServer(app=app, url=url, clock=clock, accounts=Accounts(app, app.test_client(), clock))
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        dispose_app(app)


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
