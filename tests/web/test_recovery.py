"""Recovery codes on the account page (download as a file), step-up before changes once the second factor
is old, signing in with a recovery code or an administrator's temporary code to enroll a new phone."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.accounts import PhoneToken, bearer
from tests.web.browsing import (
    LiveServer,
    add_virtual_authenticator,
    alert,
    enroll_app,
    oathtool_code,
    sign_in_with_code,
    sign_in_with_password,
    sign_out,
)

STEP_UP_MAX_AGE = 600  # the default TOKENWARD_STEP_UP_MAX_AGE the test server runs with


def _codes_via_api(live: LiveServer, username: str, phone: PhoneToken) -> list[str]:
    session = live.accounts.full_session(username, phone)
    response = live.accounts.client.post("/api/v1/recovery-codes", json={}, headers=bearer(session))
    assert response.status_code == 201, response.json
    return response.json["codes"]  # type: ignore[index,no-any-return]


def _disable_token(live: LiveServer, admin: dict[str, Any], phone: PhoneToken) -> None:
    response = live.accounts.client.post(
        f"/api/v1/admin/tokens/{phone.token_id}/disable", json={}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.json


def _shown_codes(page: Page) -> list[str]:
    items = page.get_by_role("list", name="Your new recovery codes").get_by_role("listitem")
    expect(items).to_have_count(10)
    return [text.strip() for text in items.all_inner_texts()]


def test_generate_recovery_codes_and_download_them(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", phone.secret)
    section = page.get_by_role("region", name="Recovery codes")
    expect(section).to_contain_text("None left")

    # Just signed in: the second factor is recent, so no step-up.
    page.get_by_role("button", name="Generate new codes").click()
    expect(page.get_by_role("heading", name="Your new recovery codes")).to_be_focused()
    expect(page.get_by_role("dialog")).to_have_count(0)
    codes = _shown_codes(page)
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code) for code in codes), codes
    expect(section).to_contain_text("Any codes you had before no longer work.")
    expect(section).to_contain_text("10 codes left")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as text file").click()
    download = download_info.value
    assert download.suggested_filename == "tokenward-recovery-codes-alice.txt"
    text = download.path().read_text(encoding="utf-8")
    found = re.findall(r"^\s*\d+\. (\S+)$", text, flags=re.MULTILINE)
    assert found == codes

    page.get_by_role("button", name="I saved them").click()
    expect(page.get_by_role("listitem")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate new codes")).to_be_focused()
    expect(page.get_by_text("New codes replace your current ones")).to_be_visible()

    # The next sign-in offers them beside the phone.
    sign_out(page)
    sign_in_with_password(page, "alice")
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()
    page.get_by_role("button", name="Use a recovery code").click()
    expect(page.get_by_label("Recovery code")).to_be_focused()
    expect(page.get_by_label("Code from your authenticator app")).to_be_hidden()
    page.get_by_role("button", name="Use your sign-in method instead").click()
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()


def test_step_up_before_changes_once_the_second_factor_is_old(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", phone.secret)
    live.clock.advance(STEP_UP_MAX_AGE + 1)

    page.get_by_role("button", name="Generate new codes").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    expect(dialog).to_contain_text("To create new recovery codes, answer your second factor again.")
    code = dialog.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    right = oathtool_code(phone.secret, live.clock.now())
    code.fill("000000" if right != "000000" else "111111")
    dialog.get_by_role("button", name="Verify").click()
    expect(dialog.get_by_role("alert")).to_have_text(re.compile("That code is not right"))
    expect(code).to_have_attribute("aria-invalid", "true")
    code.fill(right)
    dialog.get_by_role("button", name="Verify").click()
    expect(dialog).to_be_hidden()
    assert len(_shown_codes(page)) == 10
    live.clock.advance(30)

    # Removing the phone after a while asks again; closing the dialog changes nothing.
    live.clock.advance(STEP_UP_MAX_AGE + 1)
    remove = page.get_by_role("button", name="Remove Authenticator app")
    confirming = page.get_by_role("dialog", name="Remove this sign-in method?")
    confirm = confirming.get_by_role("button", name="Remove")
    remove.click()
    confirm.click()
    expect(dialog).to_contain_text("To remove a sign-in method")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Nothing was changed.")
    expect(page.get_by_role("row").filter(has_text="Authenticator app")).to_have_count(1)

    remove.click()
    confirm.click()
    expect(dialog).to_be_visible()
    code.fill(oathtool_code(phone.secret, live.clock.now()))
    dialog.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status")).to_have_text("“Authenticator app” was removed.")
    expect(page.get_by_text("No sign-in methods yet.")).to_be_visible()


def test_step_up_with_a_security_key(page: Page, live: LiveServer) -> None:
    add_virtual_authenticator(page)
    phone = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", phone.secret)
    page.get_by_role("button", name=re.compile("^Security key")).click()
    page.get_by_role("textbox", name="Name (optional)").fill("Blue key")
    page.get_by_role("button", name="Add security key").click()
    expect(page.get_by_role("status")).to_have_text("“Blue key” was added.")
    live.clock.advance(STEP_UP_MAX_AGE + 1)

    page.get_by_role("button", name="Generate new codes").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    # Both of the account's factors are offered; the key answers.
    expect(dialog.get_by_label("Code from your authenticator app")).to_be_focused()
    dialog.get_by_role("button", name="Use security key").click()
    expect(dialog).to_be_hidden()
    assert len(_shown_codes(page)) == 10
    me = page.evaluate("fetch('/api/v1/me').then((response) => response.json())")
    assert me["acr"] == "phishing-resistant"  # the step-up's session replaced the one from the code


def test_sign_in_with_a_recovery_code_after_the_token_was_disabled(page: Page, live: LiveServer) -> None:
    phone = live.accounts.user_with_phone("alice")
    codes = _codes_via_api(live, "alice", phone)
    _disable_token(live, live.accounts.admin_session("root"), phone)

    sign_in_with_password(page, "alice")
    # No factor can answer: the recovery code is the way in.
    field = page.get_by_label("Recovery code")
    expect(field).to_be_focused()
    expect(page.get_by_label("Code from your authenticator app")).to_be_hidden()
    field.fill("aaaa-bbbb-cccc-dddd")
    page.get_by_role("button", name="Sign in with this code").click()
    expect(alert(page)).to_have_text(re.compile("That recovery code is not right"))
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill(codes[0].upper())
    page.get_by_role("button", name="Sign in with this code").click()

    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()
    expect(page.get_by_text("You signed in with a recovery code.")).to_be_visible()
    secret = enroll_app(page, live)
    expect(page.get_by_role("row").filter(has_text="My phone")).to_contain_text("Active")
    page.get_by_role("button", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    sign_in_with_code(page, live, "alice", secret)
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_have_count(0)
    expect(page.get_by_role("region", name="Recovery codes")).to_contain_text("9 codes left")


def test_admin_gives_a_temporary_code_on_the_page(page: Page, live: LiveServer) -> None:
    root = live.accounts.user_with_phone("root", role="admin")
    carol = live.accounts.user_with_phone("carol")
    _disable_token(live, live.accounts.full_session("root", root), carol)

    sign_in_with_password(page, "carol")
    expect(alert(page)).to_have_text(re.compile("no working sign-in method left.*temporary code"))

    sign_in_with_code(page, live, "root", root.secret)
    page.goto("/admin")
    page.get_by_role("button", name="Temporary code for carol").click()
    dialog = page.get_by_role("dialog", name="Temporary code for carol")
    dialog.get_by_label("Valid for").select_option(label="15 minutes")
    dialog.get_by_role("button", name="Create code").click()
    shown = dialog.locator("#temp-code-value")
    expect(shown).to_have_text(re.compile(r"\S"))
    expect(dialog).to_contain_text("shown only this once")
    expect(dialog.get_by_text(re.compile(r"^It works once, until "))).to_be_visible()
    code = shown.inner_text()
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("A temporary code for carol was created.")
    sign_out(page)

    sign_in_with_password(page, "carol")
    field = page.get_by_label("Temporary code from your administrator")
    expect(field).to_be_focused()
    field.fill(code)
    page.get_by_role("button", name="Sign in with this code").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text("You signed in with a temporary code.")).to_be_visible()
