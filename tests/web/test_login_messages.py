"""What /login says when signing in cannot go on: a locked token, and too many attempts in a short time (the
rate limit, with the wait the server asks for). Wrong, replayed and expired codes and the transaction's
attempt budget are in test_authenticator_app.py."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from playwright.sync_api import Page, Request, Route, expect

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


def test_signing_out_while_a_call_is_in_flight_lands_on_a_plain_sign_in(page: Page, live: LiveServer) -> None:
    """The account page's calls may still be running when Sign out is pressed: one that then finds the
    session gone must not refresh, nor send the page to "Your session ended" instead of /login."""
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_password(page, "alice")
    page.get_by_label("Code from your authenticator app").fill(phone.code(live.clock.now()))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    held: list[Route] = []
    page.route("**/web/session/logout", lambda route: held.append(route) if not held else route.continue_())
    refreshes: list[Request] = []
    page.on("request", lambda sent: refreshes.append(sent) if sent.url.endswith("/refresh") else None)
    page.get_by_role("button", name="Sign out").click()
    while not held:
        page.wait_for_timeout(20)

    # While the page's own sign-out waits, the session ends (as if by that sign-out arriving first), and a
    # call of the page finds it gone.
    assert page.evaluate(END_SESSION) == 204
    with page.expect_response("**/api/v1/recovery-codes") as answer:
        page.evaluate(CALL_THE_API)
    assert answer.value.status == 401
    page.wait_for_timeout(500)  # time enough for a refresh that must not come
    assert refreshes == []

    held[0].continue_()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("Your session ended")).to_have_count(0)


CALL_THE_API = "() => { import('/assets/js/api.js').then(({ api }) => api('/api/v1/recovery-codes')); }"
END_SESSION = """async () => {
  const csrf = document.cookie.split("; ").find((part) => part.startsWith("tw_csrf=")).split("=")[1];
  const response = await fetch("/web/session/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": decodeURIComponent(csrf) },
    body: "{}",
  });
  return response.status;
}"""
