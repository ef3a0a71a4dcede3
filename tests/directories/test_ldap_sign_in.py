"""Directory users sign in through the real HTTP stack against a real slapd: password by a bind as the user,
then their second factor; renames keep tokens; disabled, removed and outside-the-group people are refused."""

from __future__ import annotations

from typing import Any

import jwt
from flask import Flask

from server.db import db
from server.models import AuditEvent, User
from tests.accounts import Accounts, PhoneToken, bearer
from tests.directories.slapd import ADMIN_GROUP, LOGIN_GROUP, Slapd, password_of


def _login(accounts: Accounts, username: str, password: str | None = None) -> Any:
    return accounts.client.post(
        "/api/v1/login", json={"username": username, "password": password or password_of(username)}
    )


def _enrolled(accounts: Accounts, username: str) -> PhoneToken:
    """First sign-in with the directory password: an enroll session; a phone enrolled in it."""
    first = _login(accounts, username)
    assert first.status_code == 200, first.json
    assert first.json["status"] == "enroll"
    return accounts.enroll_phone(first.json)


def _signed_in(accounts: Accounts, username: str, phone: PhoneToken) -> dict[str, Any]:
    challenge = _login(accounts, username)
    assert challenge.status_code == 200, challenge.json
    assert challenge.json["status"] == "second_factor"
    verified = accounts.client.post(
        "/api/v1/verify",
        json={"transaction_id": challenge.json["transaction_id"], "otp": phone.code(accounts.clock.now())},
    )
    assert verified.status_code == 200, verified.json
    accounts.clock.advance(phone.period)
    return verified.json  # type: ignore[no-any-return]


def _row(app: Flask, username: str) -> User | None:
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one_or_none()
        if user is not None:
            db.session.expunge(user)
        return user


def _reasons(app: Flask) -> list[str]:
    with app.app_context():
        return [event.reason for event in db.session.query(AuditEvent).filter_by(action="login.password")]


def test_directory_password_and_totp_give_an_mfa_session(accounts: Accounts, app: Flask) -> None:
    assert _row(app, "alice") is None
    phone = _enrolled(accounts, "alice")

    session = _signed_in(accounts, "alice", phone)

    assert session["amr"] == ["otp", "pwd", "mfa"]
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "alice"
    row = _row(app, "alice")
    assert row is not None
    assert (row.source, row.display_name, row.email, row.password_hash) == (
        "ldap",
        "Alice Liddell",
        "alice@example.org",
        None,
    )
    assert row.external_id and len(row.external_id) == 36  # slapd's entryUUID


def test_wrong_directory_password_and_unknown_name_get_the_same_answer(
    accounts: Accounts, app: Flask
) -> None:
    wrong = _login(accounts, "alice", "not alice's password")
    unknown = _login(accounts, "nobody", "not alice's password")
    empty_like = _login(accounts, "alice", " ")
    assert wrong.status_code == unknown.status_code == empty_like.status_code == 401
    assert wrong.json == unknown.json == empty_like.json
    assert wrong.json["code"] == "invalid_credentials"
    assert _row(app, "alice") is None  # nobody is admitted by a wrong password


def test_a_rename_in_the_directory_keeps_the_tokens(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    phone = _enrolled(accounts, "alice")
    before = _row(app, "alice")
    slapd.rename("alice", "alicia")
    slapd.set_group(LOGIN_GROUP, ["alicia", "bob"])
    slapd.modify(
        "dn: uid=alicia,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: userPassword\n"
        f"userPassword: {password_of('alicia')}\n"
    )

    session = _signed_in(accounts, "alicia", phone)

    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "alicia"
    after = _row(app, "alicia")
    assert before is not None and after is not None
    assert (after.id, after.uid, after.external_id) == (before.id, before.uid, before.external_id)
    assert _row(app, "alice") is None
    assert _login(accounts, "alice").status_code == 401


def test_a_user_disabled_in_the_directory_is_refused(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    phone = _enrolled(accounts, "alice")
    _signed_in(accounts, "alice", phone)
    slapd.set_account_control("alice", 512 | 0x2)  # ACCOUNTDISABLE

    refused = _login(accounts, "alice")
    never_admitted = _login(accounts, "dave")  # disabled in the directory from the start

    assert refused.status_code == never_admitted.status_code == 401
    assert refused.json["code"] == never_admitted.json["code"] == "invalid_credentials"
    assert _row(app, "dave") is None
    assert _reasons(app).count("directory_refused") == 2
    slapd.set_account_control("alice", 512)
    assert _login(accounts, "alice").status_code == 200


def test_a_user_removed_from_the_directory_is_refused(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    phone = _enrolled(accounts, "alice")
    slapd.set_group(LOGIN_GROUP, ["bob"])
    slapd.delete("alice")

    refused = _login(accounts, "alice")

    assert refused.status_code == 401
    assert refused.json["code"] == "invalid_credentials"
    assert phone.token_id  # the row and its token stay until a sync disables them


def test_only_the_login_group_signs_in(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    outside = _login(accounts, "carol")
    assert outside.status_code == 401
    assert _row(app, "carol") is None

    slapd.set_group(LOGIN_GROUP, ["alice", "bob", "carol"])

    assert _login(accounts, "carol").json["status"] == "enroll"


def test_the_admin_group_decides_the_role(accounts: Accounts, app: Flask, slapd: Slapd) -> None:
    bob_phone = _enrolled(accounts, "bob")
    alice_phone = _enrolled(accounts, "alice")
    bob = _signed_in(accounts, "bob", bob_phone)
    alice = _signed_in(accounts, "alice", alice_phone)

    assert accounts.client.get("/api/v1/me", headers=bearer(bob)).json["role"] == "admin"
    assert accounts.client.get("/api/v1/admin/users", headers=bearer(bob)).status_code == 200
    assert accounts.client.get("/api/v1/admin/users", headers=bearer(alice)).status_code == 403

    slapd.set_group(ADMIN_GROUP, ["alice"])
    bob = _signed_in(accounts, "bob", bob_phone)
    alice = _signed_in(accounts, "alice", alice_phone)

    assert accounts.client.get("/api/v1/me", headers=bearer(bob)).json["role"] == "user"
    assert accounts.client.get("/api/v1/admin/users", headers=bearer(alice)).status_code == 200


def test_local_users_stay_beside_the_directory(accounts: Accounts) -> None:
    """A break-glass administrator in the database signs in with their local password, and a local name
    is never handed to the directory (nor taken by a directory person of the same name)."""
    accounts.create_user("root-admin", role="admin")
    accounts.create_user("bob")  # a local bob: the directory's bob cannot sign in as him
    assert accounts.login("root-admin")["status"] == "enroll"
    assert _login(accounts, "bob").status_code == 401
    assert accounts.login("bob")["status"] == "enroll"


def test_a_name_tokenward_cannot_use_is_not_admitted(accounts: Accounts, app: Flask) -> None:
    refused = _login(accounts, "erin smith", "erin smith-directory-password")
    assert refused.status_code == 401
    assert refused.json["code"] == "invalid_credentials"
