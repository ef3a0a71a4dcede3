"""Every page at desktop and phone width, saved under artifacts/screenshots/ for a person to look at.

The test also holds what a person would notice first: nothing wider than a phone screen, no policy
violation, no script error (the `watch` fixture).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from server.db import db
from server.services.audit import Actor
from server.services.seed_files import SeedRecord
from server.services.seed_import import import_seeds
from tests.accounts import bearer
from tests.web.browsing import (
    PHONE,
    LiveServer,
    alert,
    oathtool_code,
    screenshot,
    sign_in_with_code,
    sign_in_with_password,
)

VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": PHONE["width"], "height": PHONE["height"]},
}


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def _shoot(page: Page, name: str, viewport: str) -> None:
    _fits(page)
    screenshot(page, f"{name}-{viewport}")


def _populate(live: LiveServer) -> None:
    accounts = live.accounts
    alice = accounts.user_with_phone("alice")
    accounts.full_session("alice", alice)  # a "last used" time
    for _ in range(10):
        accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": "000000"})
    accounts.user_with_phone("bob", type="hotp")
    accounts.client.post("/api/v1/admin/users", json={})  # an unauthenticated try, audited
    accounts.create_user("carol")
    with live.app.app_context():
        rt = live.app.extensions["tokenward"]
        import_seeds(
            db.session,
            rt,
            records=[
                SeedRecord(
                    serial=f"OATH{n:04d}", type="hotp", key=bytes(range(20)), description="Hardware fob"
                )
                for n in (1, 2)
            ],
            source="fobs.csv",
            actor=Actor.console(),
        )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_screenshots_of_every_page(page: Page, live: LiveServer, viewport: str) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    _populate(live)

    page.goto("/login")
    expect(page.get_by_label("Username")).to_be_focused()
    _shoot(page, "login", viewport)
    sign_in_with_password(page, "alice", "wrong password")
    expect(alert(page)).to_be_visible()
    _shoot(page, "login-error", viewport)

    sign_in_with_password(page, "carol")
    expect(page.get_by_role("heading", name="Add a sign-in method first")).to_be_visible()
    _shoot(page, "account-enroll-only", viewport)
    page.get_by_role("button", name=re.compile("Authenticator app")).click()
    _shoot(page, "account-add-app-options", viewport)
    page.get_by_role("button", name="Show QR code").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    _shoot(page, "account-add-app", viewport)
    page.context.clear_cookies()

    root = live.accounts.user_with_phone("root", role="admin")
    sign_in_with_password(page, "root")
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()
    _shoot(page, "login-code", viewport)
    page.goto("/login")
    sign_in_with_code(page, live, "root", root.secret)
    expect(page.get_by_role("row").filter(has_text="Authenticator app")).to_have_count(1)
    _shoot(page, "account", viewport)

    page.goto("/admin")
    expect(page.get_by_role("row").filter(has_text="carol")).to_be_visible()
    _shoot(page, "admin-users", viewport)
    page.goto("/admin/tokens")
    expect(page.get_by_text(re.compile("Locked · 10 failures"))).to_be_visible()
    _shoot(page, "admin-tokens", viewport)
    page.get_by_role("button", name=re.compile("^Resync .* of bob$")).click()
    expect(page.get_by_role("dialog")).to_be_visible()
    _shoot(page, "admin-tokens-resync", viewport)
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    page.goto("/admin/audit")
    expect(page.get_by_role("row").filter(has_text="verify.otp").first).to_be_visible()
    _shoot(page, "admin-audit", viewport)

    page.goto("/no-such-page")
    _shoot(page, "error-404", viewport)
    page.context.clear_cookies()
    sign_in_with_password(page, "alice")
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(alert(page)).to_have_text(re.compile("locked"))
    _shoot(page, "login-locked", viewport)


def _disable_token(live: LiveServer, admin: dict[str, Any], token_id: str) -> None:
    response = live.accounts.client.post(
        f"/api/v1/admin/tokens/{token_id}/disable", json={}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_screenshots_of_recovery_and_step_up(page: Page, live: LiveServer, viewport: str) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    accounts = live.accounts
    root = accounts.user_with_phone("root", role="admin")
    admin = accounts.full_session("root", root)
    codes = {}
    for name in ("alice", "dave"):  # dave's phone is lost (disabled): only his recovery codes are left
        phone = accounts.user_with_phone(name)
        session = accounts.full_session(name, phone)
        created = accounts.client.post("/api/v1/recovery-codes", json={}, headers=bearer(session))
        codes[name] = created.json["codes"]  # type: ignore[index]
    _disable_token(live, admin, phone.token_id)
    carol = accounts.user_with_phone("carol")  # lost her phone and has no codes
    _disable_token(live, admin, carol.token_id)

    sign_in_with_password(page, "carol")
    expect(alert(page)).to_have_text(re.compile("no working sign-in method left"))
    _shoot(page, "login-enrollment-needs-code", viewport)

    sign_in_with_code(page, live, "root", root.secret)
    page.get_by_role("button", name="Generate new codes").click()
    expect(page.get_by_role("listitem")).to_have_count(10)
    _shoot(page, "account-recovery-codes", viewport)
    page.get_by_role("button", name="I saved them").click()
    expect(page.get_by_text("10 codes left")).to_be_visible()
    _shoot(page, "account-with-recovery", viewport)
    live.clock.advance(601)
    page.get_by_role("button", name="Generate new codes").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    expect(dialog.get_by_label("Code from your authenticator app")).to_be_focused()
    _shoot(page, "account-step-up", viewport)
    dialog.get_by_role("button", name="Cancel").click()

    page.goto("/admin")
    page.get_by_role("button", name="Temporary code for carol").click()
    dialog = page.get_by_role("dialog", name="Temporary code for carol")
    expect(dialog.get_by_label("Valid for")).to_be_focused()
    _shoot(page, "admin-users-temp-code", viewport)
    dialog.get_by_role("button", name="Create code").click()
    # A temporary code opens a door: the admin's second factor, answered 10 minutes ago, is asked again.
    step_up = page.get_by_role("dialog", name="Confirm it's you")
    expect(step_up.get_by_label("Code from your authenticator app")).to_be_focused()
    _shoot(page, "admin-users-step-up", viewport)
    step_up.get_by_label("Code from your authenticator app").fill(
        oathtool_code(root.secret, live.clock.now())
    )
    step_up.get_by_role("button", name="Verify").click()
    expect(dialog.get_by_text(re.compile("^It works once, until"))).to_be_visible()
    _shoot(page, "admin-users-temp-code-shown", viewport)
    dialog.get_by_role("button", name="Done").click()
    page.context.clear_cookies()

    sign_in_with_password(page, "alice")
    expect(page.get_by_role("button", name="Use a recovery code")).to_be_visible()
    _shoot(page, "login-code-or-recovery", viewport)
    page.get_by_role("button", name="Use a recovery code").click()
    expect(page.get_by_label("Recovery code")).to_be_focused()
    _shoot(page, "login-recovery-code-chosen", viewport)

    sign_in_with_password(page, "dave")
    page.get_by_label("Recovery code").fill(codes["dave"][0])
    _shoot(page, "login-recovery-code", viewport)
    page.get_by_role("button", name="Sign in with this code").click()
    expect(page.get_by_text("You signed in with a recovery code.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Disabled")).to_have_count(1)
    _shoot(page, "account-enroll-recovery", viewport)
