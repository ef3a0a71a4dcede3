"""Signing in with a hardware fob on /login: the page shows the OCRA challenge large, the person types the
fob's response. The fob is played by devices.ocra (RFC 6287) with the secret stored by the provisioning
service (server.services.fob.store_fob_token), as `tokenward fob provision` stores it."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect

from devices.ocra import ocra_response
from server.db import db
from server.models import User
from server.services.audit import Actor
from server.services.fob import store_fob_token
from tests.web.browsing import LiveServer, alert, shoot_both, sign_in_with_password

SUITE = "OCRA-1:HOTP-SHA1-6:QN08"
WRONG = "That response is not right. Check the challenge on the fob and try again."


def _give_fob(live: LiveServer, username: str, secret: bytes) -> None:
    live.accounts.create_user(username)
    with live.app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        store_fob_token(
            db.session,
            live.app.extensions["tokenward"],
            user=user,
            serial="TW000042",
            suite=SUITE,
            secret=secret,
            description="Desk fob",
            actor=Actor.console(),
        )


def test_sign_in_with_a_fob(page: Page, live: LiveServer) -> None:
    secret = secrets.token_bytes(20)
    _give_fob(live, "alice", secret)

    sign_in_with_password(page, "alice")
    shown = page.locator("#fob-challenge")
    expect(shown).to_have_text(re.compile(r"^\d{4} \d{4}$"))  # grouped to read and type
    assert float(shown.evaluate("node => getComputedStyle(node).fontSize").removesuffix("px")) >= 28
    response_field = page.get_by_label("Response shown by the fob")
    expect(response_field).to_be_focused()
    expect(page.get_by_label("Code from your authenticator app")).to_be_hidden()
    expect(page.get_by_role("button", name="Use security key")).to_be_hidden()
    challenge = shown.inner_text().replace(" ", "")
    right = ocra_response(SUITE, secret, question=challenge)
    shoot_both(page, "login-fob")

    response_field.fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(WRONG)
    expect(response_field).to_be_focused()
    expect(response_field).to_have_value("")
    expect(shown).to_have_text(f"{challenge[:4]} {challenge[4:]}")  # the same sign-in, the same challenge

    response_field.fill(right)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    row = page.get_by_role("row").filter(has_text="Desk fob")
    expect(row).to_contain_text("Fob")
    expect(row).to_contain_text("Active")
