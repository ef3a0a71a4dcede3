"""What the browser tests share: the live server, page watching, and the external clients (oathtool,
zbarimg) that play the phone."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from server.clock import FrozenClock
from tests.accounts import PASSWORD, Accounts

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Chromium's console lines about our own headers and policies; anything here is a mistake of ours.
POLICY_WORDS = ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy", "Refused to")


@dataclass
class LiveServer:
    app: Flask
    url: str
    clock: FrozenClock
    accounts: Accounts


@dataclass
class PageWatch:
    csp_violations: list[str] = field(default_factory=list)
    policy_messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def csp_violation(self, description: str) -> None:
        self.csp_violations.append(description)

    def console(self, message: ConsoleMessage) -> None:
        if any(word in message.text for word in POLICY_WORDS):
            self.policy_messages.append(message.text)

    def check(self) -> None:
        assert self.csp_violations == [], self.csp_violations
        assert self.policy_messages == [], self.policy_messages
        assert self.page_errors == [], self.page_errors


def oathtool_code(secret: str, at: float, *, digits: int = 6) -> str:
    """The code a phone app would show at `at` (the server's frozen clock), computed by oathtool."""
    moment = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    result = subprocess.run(
        ["oathtool", "--totp", "--base32", f"--digits={digits}", f"--now={moment}", secret],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


def scan_qr(image: Path) -> str:
    """What a phone reads from the QR code: zbarimg on a screenshot of the page's image."""
    result = subprocess.run(
        ["zbarimg", "--nodbus", "-q", "--raw", str(image)], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, f"zbarimg could not read {image}: {result.stderr}"
    return result.stdout.strip()


def otpauth_secret(uri: str) -> str:
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth", uri
    return parse_qs(parts.query)["secret"][0]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


def assert_fits(page: Page) -> None:
    """Nothing on the page is wider than the screen (a phone would scroll sideways)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def shoot_both(page: Page, name: str) -> None:
    """The page as it is now at phone and desktop width (`<name>-phone.png`, `<name>-desktop.png`); the
    page is left at desktop width."""
    for viewport, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        assert_fits(page)
        screenshot(page, f"{name}-{viewport}")


def sign_in_with_password(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def sign_in_with_code(page: Page, live: LiveServer, username: str, secret: str) -> None:
    sign_in_with_password(page, username)
    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    code.fill(oathtool_code(secret, live.clock.now()))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    live.clock.advance(30)  # the next sign-in gets a fresh code


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def alert(page: Page) -> Locator:
    return page.get_by_role("alert").filter(has_text=re.compile(r"\S"))


def add_virtual_authenticator(page: Page) -> tuple[Any, str]:
    """Chromium's virtual FIDO2 key (CTAP2 over USB, resident keys, user verification) for this tab."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def enroll_app(page: Page, live: LiveServer, tmp_path_name: str = "qr") -> str:
    """From an enroll-only session on /account: adds an authenticator app, returns its secret."""
    page.get_by_role("button", name=re.compile("Authenticator app")).click()
    page.get_by_role("textbox", name="Name (optional)").fill("My phone")
    page.get_by_role("button", name="Show QR code").click()
    expect(page.get_by_role("heading", name="Scan this QR code with your app")).to_be_focused()
    image = page.get_by_role("img", name=re.compile("QR code"))
    expect(image).to_be_visible()
    shot = live.app.instance_path + f"/{tmp_path_name}.png"
    image.screenshot(path=shot)
    uri = scan_qr(shot)  # type: ignore[arg-type]
    secret = otpauth_secret(uri)
    shown = page.locator("#app-secret").inner_text().replace(" ", "")
    assert shown == secret
    expect(page.get_by_text(re.compile(r"This setup expires in (9|10):\d\d"))).to_be_visible()
    page.get_by_label("Then type the first code the app shows").fill(oathtool_code(secret, live.clock.now()))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("“My phone” was added.")
    live.clock.advance(30)
    return secret
