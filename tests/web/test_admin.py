"""Administration through the pages: unlocking a locked token, reading the audit log with filters and pages,
creating and disabling users; a non-admin is refused politely. And the browser session's defences: a state
change without the CSRF header is refused, and signing out revokes the access cookie on the server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from server.db import db
from server.http.auth import ACCESS_COOKIE
from server.services import audit
from tests.accounts import PhoneToken, bearer
from tests.web.browsing import LiveServer, shoot_both, sign_in_with_code, sign_out

AUDIT_PAGE_SIZE = 25  # listing.js PAGE_SIZE
TO = "\N{EN DASH}"  # the pager says "1 to 25 of 30 events" with an en dash


def _wrong_code(phone: PhoneToken, at: float) -> str:
    return "000000" if phone.code(at) != "000000" else "111111"


def _fail_verifies(live: LiveServer, username: str, phone: PhoneToken, times: int) -> list[str]:
    """Wrong codes through the one-step verify API, as another application's login form would send them."""
    codes = []
    for _ in range(times):
        answer = live.accounts.client.post(
            "/api/v1/verify", json={"username": username, "otp": _wrong_code(phone, live.clock.now())}
        )
        assert answer.status_code in (401, 403), answer.json
        codes.append(answer.json["code"])  # type: ignore[index]
    return codes


def _filter_audit(page: Page, **fields: str) -> None:
    filters = page.get_by_role("form", name="Filter the audit log")
    filters.get_by_role("button", name="Reset").click()
    for label, value in fields.items():
        if label == "Result":
            filters.get_by_label(label).select_option(label=value)
        else:
            filters.get_by_label(label).fill(value)
    filters.get_by_role("button", name="Apply").click()


def test_unlock_a_locked_token_and_find_it_in_the_audit_log(page: Page, live: LiveServer) -> None:
    root = live.accounts.user_with_phone("root", role="admin")
    alice = live.accounts.user_with_phone("alice")
    threshold = live.app.extensions["tokenward"].settings.lockout_threshold
    codes = _fail_verifies(live, "alice", alice, AUDIT_PAGE_SIZE + 5)  # two pages of failures
    # A one-step caller that gave no password is not told that the token locked: every answer reads as wrong
    # (the audit log keeps the reason, token_locked).
    assert set(codes) == {"invalid_otp"}
    failures = len(codes)

    sign_in_with_code(page, live, "root", root.secret)
    page.goto("/admin/tokens")
    row = page.get_by_role("row").filter(has_text="alice")
    expect(row).to_contain_text(f"Locked · {threshold} failures")
    row.get_by_role("button", name="Unlock Authenticator app of alice").click()
    expect(page.get_by_role("status")).to_have_text("Authenticator app is unlocked.")
    expect(row).not_to_contain_text("Locked")
    expect(row.get_by_role("button", name=re.compile("^Unlock"))).to_have_count(0)
    shoot_both(page, "admin-tokens-unlocked")
    filters = page.get_by_role("form", name="Filter the tokens")
    root_rows = page.get_by_role("table").get_by_role("row").filter(has_text="root")
    filters.get_by_label("User", exact=True).fill("alice")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/admin/tokens\?username=alice$"))
    expect(root_rows).to_have_count(0)
    expect(row).to_have_count(1)
    filters.get_by_role("button", name="Reset").click()
    expect(page).to_have_url(re.compile(r"/admin/tokens$"))
    expect(root_rows).to_have_count(1)

    page.get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(r"/admin/audit$"))
    _filter_audit(page, Action="verify.otp", Target="alice", Result="Failure")
    pager = page.get_by_role("navigation", name="Audit log pages")
    expect(pager).to_contain_text(f"1{TO}{AUDIT_PAGE_SIZE} of {failures} events")
    rows = page.get_by_role("table").get_by_role("row").filter(has_text="verify.otp")
    expect(rows).to_have_count(AUDIT_PAGE_SIZE)
    locked_tries = failures - threshold
    expect(rows.filter(has_text="token_locked")).to_have_count(locked_tries)  # newest first
    expect(rows.filter(has_text="invalid_otp")).to_have_count(AUDIT_PAGE_SIZE - locked_tries)
    expect(page).to_have_url(re.compile(r"\?action=verify\.otp&result=failure&target=alice$"))
    shoot_both(page, "admin-audit-filtered")
    pager.get_by_role("button", name="Next").click()
    expect(pager).to_contain_text(f"{AUDIT_PAGE_SIZE + 1}{TO}{failures} of {failures} events")
    expect(rows).to_have_count(failures - AUDIT_PAGE_SIZE)
    expect(rows.filter(has_text="invalid_otp")).to_have_count(failures - AUDIT_PAGE_SIZE)
    expect(pager.get_by_role("button", name="Next")).to_be_disabled()
    expect(page).to_have_url(re.compile(r"&offset=25$"))
    page.reload()  # the filters and the page live in the address
    expect(pager).to_contain_text(f"{AUDIT_PAGE_SIZE + 1}{TO}{failures} of {failures} events")
    expect(page.get_by_role("textbox", name="Target", exact=True)).to_have_value("alice")

    _filter_audit(page, Actor="root", Action="token.unlock")
    expect(pager).to_contain_text("1 of 1 event")
    unlock = page.get_by_role("row").filter(has_text="token.unlock")
    expect(unlock).to_contain_text("root")
    expect(unlock).to_contain_text("Success")
    _filter_audit(page, Action="token.lock")
    lock = page.get_by_role("row").filter(has_text="token.lock")
    expect(lock).to_contain_text("system")
    token_target = f"token:{alice.token_id}"
    expect(lock).to_contain_text(f"token:{alice.token_id[:8]}…")  # long ids are shortened
    lock.get_by_role("button", name=f"Show only events with target {token_target}").click()
    expect(page.get_by_role("textbox", name="Target", exact=True)).to_have_value(token_target)
    page.get_by_role("combobox", name="Action", exact=True).fill("")
    page.get_by_role("button", name="Apply").click()
    story = ["token.unlock", "token.lock", "token.activate", "token.enroll"]  # newest first
    expect(page.locator("#audit-table tbody td[data-label=Action]")).to_have_text(story)
    sign_out(page)

    sign_in_with_code(page, live, "alice", alice.secret)
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def test_create_a_user_and_disable_another(page: Page, live: LiveServer) -> None:
    root = live.accounts.user_with_phone("root", role="admin")
    bob = live.accounts.user_with_phone("bob")
    bobs_session = live.accounts.full_session("bob", bob)
    sign_in_with_code(page, live, "root", root.secret)
    page.goto("/admin")

    form = page.get_by_role("form", name="Create a user")
    form.get_by_label("Username").fill("dave")
    form.get_by_label("Password (optional)").fill("a fine long password")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("dave was created.")
    dave = page.get_by_role("row").filter(has_text="dave")
    expect(dave).to_contain_text("User")
    expect(dave).to_contain_text("Active")
    expect(form.get_by_label("Username")).to_be_focused()
    expect(form.get_by_label("Username")).to_have_value("")
    assert live.accounts.login("dave", "a fine long password")["status"] == "enroll"

    form.get_by_label("Username").fill("dave")
    form.get_by_role("button", name="Create user").click()
    duplicate = "There is already a user named dave. Choose another name."
    expect(page.get_by_role("status")).to_have_text(duplicate)
    expect(form.get_by_label("Username")).to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="Disable bob").click()
    expect(page.get_by_role("status")).to_have_text("bob is disabled; their sessions were ended.")
    expect(page.get_by_role("row").filter(has_text="bob")).to_contain_text("Disabled")
    expect(page.get_by_role("button", name="Enable bob")).to_be_visible()
    shoot_both(page, "admin-users-disabled")
    assert live.accounts.client.get("/api/v1/me", headers=bearer(bobs_session)).status_code == 401
    refused = live.accounts.client.post("/api/v1/login", json={"username": "bob", "password": "x" * 12})
    assert refused.status_code == 401


def test_a_user_who_is_not_an_admin_is_refused_politely(page: Page, live: LiveServer) -> None:
    alice = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", alice.secret)
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    for path in ("/admin", "/admin/tokens", "/admin/audit"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path
        expect(page.get_by_role("heading", name="You can't open this page")).to_be_visible()
        expect(page.get_by_text("This page is for administrators.")).to_be_visible()
    shoot_both(page, "error-403")
    page.get_by_role("link", name="Go to your account").click()
    expect(page).to_have_url(re.compile(r"/account$"))

    answer = page.goto("/no-such-page")  # the app-wide 404 knows who is looking, too
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("link", name="Go to your account").click()
    expect(page).to_have_url(re.compile(r"/account$"))


def test_csrf_header_is_required_and_sign_out_revokes_the_cookie(page: Page, live: LiveServer) -> None:
    alice = live.accounts.user_with_phone("alice")
    sign_in_with_code(page, live, "alice", alice.secret)
    send = """async ([method, path, withHeader]) => {
      const headers = { "Content-Type": "application/json" };
      if (withHeader) {
        const value = document.cookie.split("; ").find((part) => part.startsWith("tw_csrf=")).slice(8);
        headers["X-CSRF-Token"] = decodeURIComponent(value);
      }
      const body = method === "POST" ? JSON.stringify({ type: "totp" }) : undefined;
      const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
      return [response.status, response.status === 204 ? null : (await response.json()).code];
    }"""
    token_path = f"/api/v1/tokens/{alice.token_id}"
    assert page.evaluate(send, ["POST", "/api/v1/tokens", False]) == [403, "csrf_failed"]
    assert page.evaluate(send, ["DELETE", token_path, False]) == [403, "csrf_failed"]
    assert page.evaluate(send, ["POST", "/web/session/logout", False]) == [403, "csrf_failed"]
    assert page.evaluate(send, ["GET", "/api/v1/tokens", False])[0] == 200  # reading needs no header
    status, _ = page.evaluate(send, ["POST", "/api/v1/tokens", True])
    assert status == 201  # the same request with the header: it was the header that was missing
    page.reload()
    expect(page.get_by_role("row").filter(has_text="Authenticator app").first).to_be_visible()

    access = next(c["value"] for c in page.context.cookies() if c["name"] == ACCESS_COOKIE)
    other_client = live.app.test_client(use_cookies=False)
    cookie = {"Cookie": f"{ACCESS_COOKIE}={access}"}
    assert other_client.get("/api/v1/me", headers=cookie).status_code == 200
    sign_out(page)
    assert ACCESS_COOKIE not in {c["name"] for c in page.context.cookies()}
    assert other_client.get("/api/v1/me", headers=cookie).status_code == 401
    assert other_client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    with live.app.app_context():
        logouts = audit.list_events(db.session, action="session.logout").events
        assert [(event.actor, event.result) for event in logouts] == [("alice", "success")]
