"""Security keys through the pages, with Chromium's virtual authenticator (CTAP2, resident keys, UV): adding a
key on /account, signing in with password + key, with a passkey alone, and what a person reads when the key
no longer holds the credential. Removing a sign-in method on /account."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.browsing import (
    LiveServer,
    add_virtual_authenticator,
    alert,
    shoot_both,
    sign_in_with_code,
    sign_in_with_password,
    sign_out,
)


def _add_key(page: Page, name: str) -> None:
    page.get_by_role("button", name=re.compile("^Security key")).click()
    page.get_by_role("textbox", name="Name (optional)").fill(name)
    page.get_by_role("button", name="Add security key").click()
    expect(page.get_by_role("status")).to_have_text(f"“{name}” was added.")


def test_add_a_security_key_then_sign_in_with_it_and_with_a_passkey(page: Page, live: LiveServer) -> None:
    cdp, authenticator = add_virtual_authenticator(page)
    live.accounts.create_user("alice")
    sign_in_with_password(page, "alice")
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()

    _add_key(page, "Blue key")
    row = page.get_by_role("row").filter(has_text="Blue key")
    expect(row).to_contain_text("Security key")
    expect(row).to_contain_text("Active")
    shoot_both(page, "account-security-key-added")
    page.get_by_role("button", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    sign_in_with_password(page, "alice")
    key_button = page.get_by_role("button", name="Use security key")
    expect(key_button).to_be_focused()
    expect(page.get_by_label("Code from your authenticator app")).to_be_hidden()
    shoot_both(page, "login-security-key")
    key_button.click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("row").filter(has_text="Blue key")).to_contain_text(re.compile(r"\d{4}"))
    shoot_both(page, "account-security-key")
    sign_out(page)

    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text(re.compile("Signed in as alice"))).to_be_visible()
    sign_out(page)

    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator})
    sign_in_with_password(page, "alice")
    page.get_by_role("button", name="Use security key").click()
    expect(alert(page)).to_have_text(re.compile("No security key answered"))
    expect(page.get_by_role("button", name="Use security key")).to_be_focused()
    shoot_both(page, "login-security-key-unknown")
    page.get_by_role("button", name="Use another account").click()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(alert(page)).to_have_text(re.compile("No passkey for this site answered"))
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_focused()
    shoot_both(page, "login-passkey-unknown")


def test_remove_a_sign_in_method(page: Page, live: LiveServer) -> None:
    add_virtual_authenticator(page)
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", phone.secret)
    _add_key(page, "Blue key")

    page.get_by_role("button", name="Remove Authenticator app").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("You will no longer be able to sign in with “Authenticator app”.")
    dialog.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_have_text("“Authenticator app” was removed.")
    expect(page.get_by_role("row").filter(has_text="Authenticator app")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="Blue key")).to_have_count(1)

    assert live.accounts.login("alice")["methods"] == ["webauthn"]
