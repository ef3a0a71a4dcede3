"""Admin API: users, any user's tokens (disable, unlock, resync, delete) and the audit log."""

from __future__ import annotations

import pyotp
import pytest

from tests.accounts import PASSWORD, Accounts, bearer


def test_only_admins_reach_admin_endpoints(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    user = accounts.full_session("alice", phone)
    assert accounts.client.get("/api/v1/admin/users", headers=bearer(user)).status_code == 403
    assert accounts.client.get("/api/v1/admin/users").status_code == 401


def test_user_lifecycle(accounts: Accounts) -> None:
    admin = bearer(accounts.admin_session())
    created = accounts.client.post(
        "/api/v1/admin/users", json={"username": "carol", "password": PASSWORD}, headers=admin
    )
    assert created.status_code == 201
    assert created.json["username"] == "carol" and created.json["role"] == "user"
    duplicate = accounts.client.post("/api/v1/admin/users", json={"username": "carol"}, headers=admin)
    assert duplicate.status_code == 409

    listed = accounts.client.get("/api/v1/admin/users?limit=1&offset=0", headers=admin).json
    assert listed["total"] == 2 and len(listed["users"]) == 1

    shown = accounts.client.get("/api/v1/admin/users/carol", headers=admin).json
    assert shown["tokens"] == []
    assert accounts.client.post("/api/v1/admin/users/carol/disable", headers=admin).json["disabled"] is True
    assert (
        accounts.client.post("/api/v1/login", json={"username": "carol", "password": PASSWORD}).status_code
        == 401
    )
    assert accounts.client.post("/api/v1/admin/users/carol/enable", headers=admin).json["disabled"] is False
    assert accounts.login("carol")["status"] == "enroll"
    assert accounts.client.delete("/api/v1/admin/users/carol", headers=admin).status_code == 204
    assert accounts.client.get("/api/v1/admin/users/carol", headers=admin).status_code == 404


def test_disabling_a_user_revokes_their_sessions(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    admin = bearer(accounts.admin_session())
    accounts.client.post("/api/v1/admin/users/alice/disable", headers=admin)
    assert accounts.client.get("/api/v1/me", headers=bearer(session)).status_code == 401
    refresh = accounts.client.post("/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401


def test_token_disable_enable_and_filters(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    admin = bearer(accounts.admin_session())
    listed = accounts.client.get("/api/v1/admin/tokens?username=alice", headers=admin).json
    assert listed["total"] == 1 and listed["tokens"][0]["user"] == "alice"
    assert "secret" not in listed["tokens"][0]

    disabled = accounts.client.post(f"/api/v1/admin/tokens/{phone.token_id}/disable", headers=admin)
    assert disabled.json["state"] == "disabled"
    refused = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    assert refused.status_code == 401
    assert accounts.client.get("/api/v1/admin/tokens?state=disabled", headers=admin).json["total"] == 1
    accounts.client.post(f"/api/v1/admin/tokens/{phone.token_id}/enable", headers=admin)
    accounts.clock.advance(30)
    ok = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    assert ok.status_code == 200


def test_lockout_after_threshold_and_admin_unlock(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    for _ in range(10):
        wrong = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": "000000"})
        assert wrong.status_code == 401
    code = phone.code(accounts.clock.now())
    # Without a password the lock looks like a wrong code; a caller who proves the password is told.
    hidden = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": code})
    assert hidden.status_code == 401 and hidden.json["code"] == "invalid_otp"
    locked = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": code, "password": PASSWORD}
    )
    assert locked.status_code == 403
    assert locked.json["code"] == "token_locked"

    admin = bearer(accounts.admin_session())
    assert accounts.client.get("/api/v1/admin/tokens?locked=true", headers=admin).json["total"] == 1
    unlocked = accounts.client.post(f"/api/v1/admin/tokens/{phone.token_id}/unlock", headers=admin)
    assert unlocked.json["locked"] is False and unlocked.json["fail_count"] == 0
    ok = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    assert ok.status_code == 200
    events = accounts.client.get("/api/v1/admin/audit?action=token.lock", headers=admin).json
    assert events["total"] == 1 and events["events"][0]["target"] == f"token:{phone.token_id}"


def test_a_success_resets_the_failure_count(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    for _round in range(3):
        for _ in range(9):
            accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": "000000"})
        code = phone.code(accounts.clock.now())
        assert (
            accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": code}).status_code == 200
        )
        accounts.clock.advance(30)


def test_resync_hotp_far_ahead(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    phone.counter += 50  # the button was pressed 50 times away from any login
    beyond = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": phone.code(0)})
    assert beyond.status_code == 401
    admin = bearer(accounts.admin_session())
    resync = accounts.client.post(
        f"/api/v1/admin/tokens/{phone.token_id}/resync",
        json={"otp1": phone.code(0), "otp2": phone.code(0)},
        headers=admin,
    )
    assert resync.status_code == 200
    assert (
        accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": phone.code(0)}).status_code
        == 200
    )


def test_resync_totp_records_the_drift(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    drifted = pyotp.TOTP(phone.secret)
    fast_by = 20 * 30  # the phone's clock runs ten minutes ahead
    now = accounts.clock.now()
    refused = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": drifted.at(now + fast_by)}
    )
    assert refused.status_code == 401
    admin = bearer(accounts.admin_session())
    now = accounts.clock.now()
    resync = accounts.client.post(
        f"/api/v1/admin/tokens/{phone.token_id}/resync",
        json={"otp1": drifted.at(now + fast_by), "otp2": drifted.at(now + fast_by + 30)},
        headers=admin,
    )
    assert resync.status_code == 200
    assert resync.json["drift_steps"] == 20
    accounts.clock.advance(60)
    now = accounts.clock.now()
    ok = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": drifted.at(now + fast_by)})
    assert ok.status_code == 200


def test_resync_beyond_the_allowed_drift_is_refused(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    drifted = pyotp.TOTP(phone.secret)
    admin = bearer(accounts.admin_session())
    now, far = accounts.clock.now(), 300 * 30  # allowed drift is 240 steps
    refused = accounts.client.post(
        f"/api/v1/admin/tokens/{phone.token_id}/resync",
        json={"otp1": drifted.at(now + far), "otp2": drifted.at(now + far + 30)},
        headers=admin,
    )
    assert refused.status_code == 422
    assert refused.json["code"] == "resync_failed"


def test_resync_with_non_consecutive_codes_fails(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    admin = bearer(accounts.admin_session())
    first, _skipped, third = phone.code(0), phone.code(0), phone.code(0)
    refused = accounts.client.post(
        f"/api/v1/admin/tokens/{phone.token_id}/resync", json={"otp1": first, "otp2": third}, headers=admin
    )
    assert refused.status_code == 422


def test_audit_log_records_attempts_with_filters_and_paging(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": "000000"})
    accounts.client.post("/api/v1/login", json={"username": "alice", "password": "wrong password"})
    accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    admin = bearer(accounts.admin_session())

    failures = accounts.client.get("/api/v1/admin/audit?result=failure&target=alice", headers=admin).json
    assert {(event["action"], event["reason"]) for event in failures["events"]} == {
        ("verify.otp", "invalid_otp"),
        ("login.password", "invalid_credentials"),
    }
    assert all(event["client_ip"] == "127.0.0.1" for event in failures["events"])
    # An unauthenticated caller's failures name alice as the target, never as the one who acted.
    assert all(event["actor"] == "anonymous" for event in failures["events"])
    page = accounts.client.get("/api/v1/admin/audit?limit=2&offset=1", headers=admin).json
    assert len(page["events"]) == 2 and page["total"] > 3
    everything = accounts.client.get("/api/v1/admin/audit?limit=500", headers=admin).json["events"]
    assert [event["id"] for event in everything] == sorted(
        (event["id"] for event in everything), reverse=True
    )


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=100000", "offset=-1", "result=maybe", "bogus=1", "since=x"]
)
def test_bad_audit_queries_are_422(accounts: Accounts, query: str) -> None:
    admin = bearer(accounts.admin_session())
    assert accounts.client.get(f"/api/v1/admin/audit?{query}", headers=admin).status_code == 422


def test_the_last_enabled_administrator_cannot_be_disabled_or_deleted(accounts: Accounts) -> None:
    admin = bearer(accounts.admin_session("root"))
    for refused in (
        accounts.client.post("/api/v1/admin/users/root/disable", headers=admin),
        accounts.client.delete("/api/v1/admin/users/root", headers=admin),
    ):
        assert refused.status_code == 409 and refused.json["code"] == "conflict"
    accounts.client.post("/api/v1/admin/users", json={"username": "ops", "role": "admin"}, headers=admin)
    assert accounts.client.post("/api/v1/admin/users/root/disable", headers=admin).status_code == 200
