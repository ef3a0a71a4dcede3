"""Real Chromium (Debian's `chromium`, driven by Playwright) against the app served over real HTTP.

One browser per test process (Playwright's driver and Chromium cost about 2 s of CPU to start); every test
gets its own server (its own database and frozen clock) on
`http://localhost:<port>` — WebAuthn refuses 127.0.0.1 — and its own browser context, so no cookie or
credential crosses tests. Every page a test opens is watched: a Content-Security-Policy violation or an
uncaught script error fails the test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from werkzeug.serving import make_server

from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from tests.accounts import Accounts, LoginFormClient, dispose_app
from tests.web.browsing import CHROMIUM, DESKTOP, LiveServer, PageWatch

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# expect() waits this long for a page to get there (Playwright's 5 s is short on a loaded 2-core CI box).
expect.set_options(timeout=10_000)

# Reported to the test through a binding; the listener is injected by the browser (CDP), not by our pages.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline";
  window.__twCspViolation(`${event.violatedDirective} blocked ${blocked} on ${location.pathname}`);
});
"""


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does it)")
    home = tmp_path_factory.mktemp("chromium-home")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home), "TMPDIR": str(home)},
        )
        yield browser
        browser.close()
    finally:
        playwright.stop()


@contextmanager
def serve_live(
    settings: Settings, clock: FrozenClock, *, public_host: str = "localhost"
) -> Iterator[LiveServer]:
    """The app on a real port of `public_host`, opened by the browser as localhost. The socket is bound
    first: the public URL (WebAuthn origin, JWT issuer, CSRF origin check) must name the port."""
    apps: dict[str, Flask] = {}

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        # Read each answer whole and close it here: werkzeug's test server leaves a file response open when
        # the browser drops the connection (an aborted favicon), and the ResourceWarning fails a later test.
        answer = apps["app"](environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            getattr(answer, "close", lambda: None)()

    server = make_server(public_host, 0, dispatch, threaded=True)
    # server_close() waits for the request threads: one still serving when the engines are disposed would
    # leave its database connection to the garbage collector, whose warning fails a later test.
    server.daemon_threads = False
    app = create_app(replace(settings, public_url=f"http://{public_host}:{server.server_port}"), clock=clock)
    # One-step verify calls from the tests authenticate as a registered client, as in tests/conftest.py.
    app.test_client_class = LoginFormClient
    apps["app"] = app
    # shutdown() waits for the loop's next look at its flag: every 0.5 s by default, half a second per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    try:
        url = f"http://localhost:{server.server_port}"
        yield LiveServer(app=app, url=url, clock=clock, accounts=Accounts(app, app.test_client(), clock))
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        dispose_app(app)


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    with serve_live(settings, clock) as server:
        yield server


@pytest.fixture
def context(browser: Browser, live: LiveServer) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=live.url, viewport=DESKTOP, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def watch(context: BrowserContext) -> Iterator[PageWatch]:
    watch = PageWatch()
    context.expose_function("__twCspViolation", watch.csp_violation)
    context.add_init_script(CSP_LISTENER)
    context.on("console", watch.console)
    context.on("weberror", lambda web_error: watch.page_errors.append(str(web_error.error)))
    yield watch
    watch.check()


@pytest.fixture
def page(context: BrowserContext, watch: PageWatch) -> Page:
    return context.new_page()
