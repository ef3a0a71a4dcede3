"""The literal quick start signs in (issue 14, item 1): `tokenward serve --port P` with no configuration at
all, in an empty directory, opened in Chromium at the address gunicorn binds (127.0.0.1), at desktop and
phone sizes. The server must derive its public URL (http://localhost:P), send the browser there, and say
which address to open."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.serve_process import PASSWORD, TOKENWARD, ServeProcess
from tests.web.apache_rp import free_port
from tests.web.browsing import DESKTOP, PHONE

SIZES = {"desktop": DESKTOP, "phone": PHONE}


@dataclass
class QuickStart:
    server: ServeProcess
    port: int
    directory: Path


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuickStart]:
    directory = tmp_path_factory.mktemp("fresh-clone")
    env = {name: value for name, value in os.environ.items() if not name.startswith("TOKENWARD_")}
    port = free_port()
    argv = [TOKENWARD, "serve", "--port", str(port), "--workers", "1"]
    log = directory / "log" / "serve.log"
    with ServeProcess.launch(argv, env, log_path=log, cwd=directory) as server:
        added = subprocess.run(
            [TOKENWARD, "user", "add", "alice", "--password-stdin"],
            env=env,
            cwd=directory,
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        yield QuickStart(server, port, directory)


def test_the_server_says_which_address_to_open(quick_start: QuickStart) -> None:
    assert (quick_start.directory / "instance" / "tokenward.db").exists()
    assert f"Tokenward is ready: open http://localhost:{quick_start.port}/" in quick_start.server.log(None)


@pytest.mark.parametrize("size", SIZES)
def test_the_first_page_opened_signs_in(browser: Browser, quick_start: QuickStart, size: str) -> None:
    context = browser.new_context(viewport=SIZES[size], locale="en-US", timezone_id="UTC")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{quick_start.port}/")  # the address gunicorn prints
        expect(page).to_have_url(re.compile(rf"^http://localhost:{quick_start.port}/login"))
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(f"http://localhost:{quick_start.port}/account")
        expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()
    finally:
        context.close()
