"""A wrong first code while adding an authenticator app is an answer to show, not a session end (issue 14).

The page used to take the activation's 401 (`invalid_otp`) for an ended session: it refreshed, sent the code a
second time, then showed "Your session ended" and left the pending token behind. Only a 401 that says the
session is gone (`unauthenticated`, `invalid_token`) may sign the person out.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import select

from server.db import db
from server.models import Token
from tests.web.browsing import (
    DESKTOP,
    PHONE,
    LiveServer,
    oathtool_code,
    otpauth_secret,
    scan_qr,
    sign_in_with_password,
)

SIZES = {"desktop": DESKTOP, "phone": PHONE}


def start_app_setup(page: Page, live: LiveServer) -> str:
    """Signs alice in (enroll-only session) and starts adding an app; returns the app's secret."""
    live.accounts.create_user("alice")
    sign_in_with_password(page, "alice")
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_role("button", name=re.compile("Authenticator app")).click()
    page.get_by_role("button", name="Show QR code").click()
    image = page.get_by_role("img", name=re.compile("QR code"))
    expect(image).to_be_visible()
    shot = live.app.instance_path + "/qr.png"
    image.screenshot(path=shot)
    return otpauth_secret(scan_qr(shot))  # type: ignore[arg-type]


def token_states(live: LiveServer) -> list[str]:
    with live.app.app_context():
        return sorted(db.session.scalars(select(Token.state)))


def activations(page: Page) -> list[str]:
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/activate"):
            sent.append(request.url)

    page.on("request", record)
    return sent


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_first_code_says_so_and_the_user_types_again(page: Page, live: LiveServer, size: str) -> None:
    page.set_viewport_size(SIZES[size])
    secret = start_app_setup(page, live)
    sent = activations(page)
    right = oathtool_code(secret, live.clock.now())
    code = page.get_by_label("Then type the first code the app shows")
    code.fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("status")).to_have_text(re.compile("That code is not right"))
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(code).to_be_visible()
    expect(code).to_have_attribute("aria-invalid", "true")
    assert len(sent) == 1, "the wrong code was sent more than once"
    assert token_states(live) == ["pending"]

    code.fill(right)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Your authenticator app was added.")
    assert len(sent) == 2
    assert token_states(live) == ["active"], "a pending token was left behind"


@pytest.mark.parametrize("size", SIZES)
def test_a_real_session_end_during_setup_signs_out(page: Page, live: LiveServer, size: str) -> None:
    page.set_viewport_size(SIZES[size])
    secret = start_app_setup(page, live)
    page.context.clear_cookies()  # the session is gone (as after a sign-out in another tab)
    page.get_by_label("Then type the first code the app shows").fill(oathtool_code(secret, live.clock.now()))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/login\?next=.*reason=expired"))
