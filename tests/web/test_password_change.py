"""Changing one's password on the account page (issue 14, item 6): a wrong current password says so (and
does not sign out), an old second factor is asked again (step-up), then the new password signs in."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.browsing import PHONE, LiveServer, assert_fits, oathtool_code, sign_in_with_code, sign_out

STEP_UP_MAX_AGE = 600  # the default TOKENWARD_STEP_UP_MAX_AGE the test server runs with
NEW = "a new and longer passphrase"


def test_change_the_password_on_the_account_page(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", phone.secret)
    status = page.get_by_role("status")
    form = page.locator("#password-form")

    form.get_by_label("Current password").fill("not my password")
    form.get_by_label("New password").fill(NEW)
    form.get_by_role("button", name="Change password").click()
    expect(status).to_have_text("The current password is not right.")
    expect(form.get_by_label("Current password")).to_be_focused()
    expect(page).to_have_url(re.compile(r"/account$"))  # a 401 for the password is not a session end

    live.clock.advance(STEP_UP_MAX_AGE + 1)
    form.get_by_label("Current password").fill("correct horse battery")
    form.get_by_role("button", name="Change password").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    expect(dialog).to_contain_text("To change your password, answer your second factor again.")
    dialog.get_by_label("Code from your authenticator app").fill(
        oathtool_code(phone.secret, live.clock.now())
    )
    dialog.get_by_role("button", name="Verify").click()
    expect(status).to_have_text("Your password was changed. Your other sessions were signed out.")
    live.clock.advance(30)
    page.set_viewport_size(PHONE)
    assert_fits(page)
    sign_out(page)

    refused = live.accounts.client.post(
        "/api/v1/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert refused.status_code == 401
    assert live.accounts.login("alice", NEW)["status"] == "second_factor"
