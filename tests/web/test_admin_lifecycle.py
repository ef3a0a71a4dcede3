"""Administration pages (issue 14, item 6): reset a user's password, delete a token and a user, each
asked for first; at desktop and phone widths (the longer row of actions still fits)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.accounts import bearer
from tests.web.browsing import PHONE, LiveServer, assert_fits, sign_in_with_code

NEW = "a new and longer passphrase"


def test_reset_a_password_delete_a_token_and_a_user(page: Page, live: LiveServer) -> None:
    root = live.accounts.user_with_phone("root", role="admin")
    bob = live.accounts.user_with_phone("bob")
    bobs_session = live.accounts.full_session("bob", bob)
    sign_in_with_code(page, live, "root", root.secret)
    page.goto("/admin")
    status = page.get_by_role("status")

    page.get_by_role("button", name="Reset the password of bob").click()
    dialog = page.get_by_role("dialog", name="New password for bob")
    dialog.get_by_label("New password").fill(NEW)
    dialog.get_by_role("button", name="Reset password").click()
    expect(status).to_have_text("The password of bob was reset; their sessions were ended.")
    assert live.accounts.client.get("/api/v1/me", headers=bearer(bobs_session)).status_code == 401
    assert live.accounts.login("bob", NEW)["status"] == "second_factor"
    expect(page.get_by_role("button", name="Reset the password of root")).to_have_count(0)  # the account page
    expect(page.get_by_role("button", name="Delete root")).to_have_count(0)
    page.set_viewport_size(PHONE)
    assert_fits(page)

    page.goto("/admin/tokens")
    page.get_by_role("button", name="Delete Authenticator app of bob").click()
    confirming = page.get_by_role("dialog", name="Delete this token?")
    confirming.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("row").filter(has_text="bob")).to_have_count(1)
    page.get_by_role("button", name="Delete Authenticator app of bob").click()
    confirming.get_by_role("button", name="Delete").click()
    expect(status).to_have_text("Authenticator app of bob was deleted.")
    expect(page.get_by_role("row").filter(has_text="bob")).to_have_count(0)

    page.goto("/admin")
    page.get_by_role("button", name="Delete bob").click()
    page.get_by_role("dialog", name="Delete bob?").get_by_role("button", name="Delete").click()
    expect(status).to_have_text("bob was deleted.")
    expect(page.get_by_role("row").filter(has_text="bob")).to_have_count(0)
    assert (
        live.accounts.client.post("/api/v1/login", json={"username": "bob", "password": NEW}).status_code
        == 401
    )
