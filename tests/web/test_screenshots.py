"""Every page at desktop and phone width, saved under artifacts/screenshots/ for a person to look at.

The test also holds what a person would notice first: nothing wider than a phone screen, no policy
violation, no script error (the `watch` fixture).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from server.db import db
from server.services.audit import Actor
from server.services.seed_files import SeedRecord
from server.services.seed_import import import_seeds
from tests.web.browsing import PHONE, LiveServer, alert, screenshot, sign_in_with_code, sign_in_with_password

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": PHONE}


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
