"""Enrolling a phone app through the page (QR read by zbarimg, codes by oathtool), then signing in."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.browsing import (
    LiveServer,
    alert,
    enroll_app,
    sign_in_with_code,
    sign_in_with_password,
    sign_out,
)


def test_enroll_an_app_then_sign_in_with_it(page: Page, live: LiveServer) -> None:
    live.accounts.create_user("alice")
    sign_in_with_password(page, "alice")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()

    secret = enroll_app(page, live)
    row = page.get_by_role("row").filter(has_text="My phone")
    expect(row).to_contain_text("Authenticator app")
    expect(row).to_contain_text("Active")
    expect(page.get_by_text("You're all set.")).to_be_visible()
    page.get_by_role("button", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    sign_in_with_code(page, live, "alice", secret)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="My phone")
    expect(row.get_by_role("button", name="Remove My phone")).to_be_visible()
    sign_out(page)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$|/login\?next=/account$"))


def test_wrong_and_replayed_codes_get_clear_messages(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_password(page, "alice")
    code = page.get_by_label("Code from your authenticator app")
    right = phone.code(live.clock.now())
    code.fill("000000" if right != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(re.compile("That code is not right"))
    expect(code).to_be_focused()
    expect(code).to_have_attribute("aria-invalid", "true")

    code.fill(right)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    sign_out(page)

    sign_in_with_password(page, "alice")
    page.get_by_label("Code from your authenticator app").fill(right)
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(re.compile("already used"))


def test_wrong_password_and_too_many_attempts(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_password(page, "alice", "not the password")
    expect(alert(page)).to_have_text("The username or password is not right.")
    expect(page.get_by_label("Password")).to_be_focused()

    sign_in_with_password(page, "alice")
    code = page.get_by_label("Code from your authenticator app")
    wrong = "000000" if phone.code(live.clock.now()) != "000000" else "111111"
    for _ in range(5):
        code.fill(wrong)
        page.get_by_role("button", name="Verify").click()
        expect(alert(page)).to_have_text(re.compile("That code is not right"))
        page.get_by_role("alert").evaluate("node => { node.textContent = '' }")
    code.fill(wrong)
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(re.compile("Too many wrong answers"))
    expect(page.get_by_label("Password")).to_be_visible()


def test_an_expired_sign_in_starts_over(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_password(page, "alice")
    expect(page.get_by_text(re.compile(r"This sign-in expires in [45]:\d\d"))).to_be_visible()
    live.clock.advance(301)
    page.get_by_label("Code from your authenticator app").fill(phone.code(live.clock.now()))
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(re.compile("took too long"))
    expect(page.get_by_label("Password")).to_be_focused()
