"""What /login says when signing in cannot go on: a locked token, and too many attempts in a short time (the
rate limit, with the wait the server asks for). Wrong, replayed and expired codes and the transaction's
attempt budget are in test_authenticator_app.py."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from playwright.sync_api import Page, expect

from server.config import RateLimits, Settings
from tests.web.browsing import LiveServer, alert, shoot_both, sign_in_with_password

LOCKED = "This sign-in method is locked after too many wrong attempts. Ask an administrator to unlock it."


@pytest.fixture
def rate_limits() -> str:
    return "off"


@pytest.fixture
def settings(settings: Settings, rate_limits: str) -> Settings:
    return replace(settings, rate_limits=RateLimits.parse(rate_limits))


def test_a_locked_token_says_whom_to_ask(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    threshold = live.app.extensions["tokenward"].settings.lockout_threshold
    wrong = "000000" if phone.code(live.clock.now()) != "000000" else "111111"
    for _ in range(threshold):
        live.accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": wrong})

    sign_in_with_password(page, "alice")
    code = page.get_by_label("Code from your authenticator app")
    code.fill(phone.code(live.clock.now()))  # even the right code: the token is locked
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(LOCKED)
    expect(code).to_be_focused()
    expect(code).not_to_have_attribute("aria-invalid", "true")  # the code was not the problem
    shoot_both(page, "login-locked-token")


@pytest.mark.parametrize("rate_limits", ["user=3/minute ip=1000/minute"])
def test_too_many_tries_in_a_minute_say_how_long_to_wait(page: Page, live: LiveServer) -> None:
    live.accounts.create_user("alice")
    for _ in range(3):
        sign_in_with_password(page, "alice", "not the password")
        expect(alert(page)).to_have_text("The username or password is not right.")
    sign_in_with_password(page, "alice")
    wait = re.compile(r"^Too many attempts\. Try again in (60|[1-5]\d|\d) seconds\.$")
    expect(alert(page)).to_have_text(wait)
    expect(page.get_by_label("Password")).to_be_visible()  # the right password waits too
    expect(page).to_have_url(re.compile(r"/login$"))
    shoot_both(page, "login-rate-limited")
