"""Login → transaction → second factor → session, the one-step form and `{username}` challenges."""

from __future__ import annotations

from typing import Any

import jwt
import pyotp
import pytest
from sqlalchemy import event, select

from server.db import db
from server.errors import InvalidOtp, ReplayedOtp
from server.models import Token
from server.services import otp
from tests.accounts import PASSWORD, Accounts, audit_events, bearer, login_form_credentials


def test_password_then_totp_gives_an_mfa_session(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    challenge = accounts.login("alice")
    assert challenge["status"] == "second_factor"
    assert challenge["methods"] == ["otp"]
    assert challenge["expires_in"] == 300

    response = accounts.client.post(
        "/api/v1/verify",
        json={"transaction_id": challenge["transaction_id"], "otp": phone.code(accounts.clock.now())},
    )

    assert response.status_code == 200
    session = response.json
    assert session["token_type"] == "Bearer"
    assert session["amr"] == ["otp", "pwd", "mfa"]
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "alice"
    assert claims["scope"] == "session"


def test_wrong_password_and_unknown_user_get_the_same_answer(accounts: Accounts) -> None:
    accounts.create_user("alice")
    wrong = accounts.client.post("/api/v1/login", json={"username": "alice", "password": "not it at all"})
    unknown = accounts.client.post("/api/v1/login", json={"username": "nobody", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert wrong.json["code"] == "invalid_credentials"


def test_a_code_is_accepted_once_only(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    code = phone.code(accounts.clock.now())
    first = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": code})
    again = accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": code})
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json["code"] == "replayed_otp"


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_a_reused_hotp_code_is_replayed_and_audited_as_such(accounts: Accounts, password: str | None) -> None:
    phone = accounts.user_with_phone("alice", type="hotp")
    code = phone.code(accounts.clock.now())
    body = {"username": "alice", "otp": code} | ({"password": password} if password else {})
    assert accounts.client.post("/api/v1/verify", json=body).status_code == 200
    again = accounts.client.post("/api/v1/verify", json=body)
    assert (again.status_code, again.json["code"]) == (401, "replayed_otp")
    near = {pyotp.HOTP(phone.secret).at(counter) for counter in range(phone.counter + 20)}
    wrong_code = next(guess for guess in ("000000", "111111", "222222") if guess not in near)
    wrong = accounts.client.post("/api/v1/verify", json=body | {"otp": wrong_code})
    assert (wrong.status_code, wrong.json["code"]) == (401, "invalid_otp")
    reasons = [event["reason"] for event in audit_events(accounts.app, action_prefix="verify.")]
    assert reasons[-2:] == ["replayed_otp", "invalid_otp"]


def test_wrong_code_is_refused_and_the_transaction_keeps_its_budget(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    transaction = accounts.login("alice")["transaction_id"]
    for _ in range(4):
        wrong = accounts.client.post("/api/v1/verify", json={"transaction_id": transaction, "otp": "000000"})
        assert wrong.status_code == 401
        assert wrong.json["code"] == "invalid_otp"
    last = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction, "otp": phone.code(accounts.clock.now())}
    )
    assert last.status_code == 200


def test_a_transaction_allows_five_attempts(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    transaction = accounts.login("alice")["transaction_id"]
    for _ in range(5):
        accounts.client.post("/api/v1/verify", json={"transaction_id": transaction, "otp": "000000"})
    sixth = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction, "otp": phone.code(accounts.clock.now())}
    )
    assert sixth.status_code == 401
    assert sixth.json["code"] == "too_many_attempts"


def test_a_transaction_is_single_use(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    transaction = accounts.login("alice")["transaction_id"]
    ok = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction, "otp": phone.code(accounts.clock.now())}
    )
    accounts.clock.advance(30)
    again = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction, "otp": phone.code(accounts.clock.now())}
    )
    assert ok.status_code == 200
    assert again.status_code == 401
    assert again.json["code"] == "transaction_expired"


def test_a_transaction_expires(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    transaction = accounts.login("alice")["transaction_id"]
    accounts.clock.advance(301)
    late = accounts.client.post(
        "/api/v1/verify", json={"transaction_id": transaction, "otp": phone.code(accounts.clock.now())}
    )
    assert late.status_code == 401
    assert late.json["code"] == "transaction_expired"


def test_unknown_transaction_is_expired(accounts: Accounts) -> None:
    response = accounts.client.post("/api/v1/verify", json={"transaction_id": "nope", "otp": "123456"})
    assert response.status_code == 401
    assert response.json["code"] == "transaction_expired"


@pytest.mark.parametrize("with_password", [True, False])
def test_one_step_verify_for_other_login_forms(accounts: Accounts, with_password: bool) -> None:
    phone = accounts.user_with_phone("alice")
    body = {"username": "alice", "otp": phone.code(accounts.clock.now())}
    if with_password:
        body["password"] = PASSWORD
    response = accounts.client.post("/api/v1/verify", json=body)
    assert response.status_code == 200
    assert response.json["amr"] == (["otp", "pwd", "mfa"] if with_password else ["otp"])


def test_one_step_with_a_wrong_password_fails_even_with_a_good_code(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    body = {"username": "alice", "otp": phone.code(accounts.clock.now()), "password": "wrong password"}
    response = accounts.client.post("/api/v1/verify", json=body)
    assert response.status_code == 401
    assert response.json["code"] == "invalid_credentials"


def test_username_alone_starts_a_transaction(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    challenge = accounts.client.post("/api/v1/verify", json={"username": "alice"}).json
    assert challenge["status"] == "challenge"
    answer = {"transaction_id": challenge["transaction_id"], "otp": phone.code(accounts.clock.now())}
    # The transaction belongs to the client that opened it: answered without its credentials it is refused.
    anonymous = accounts.client.post("/api/v1/verify", json=answer)
    assert anonymous.status_code == 401 and anonymous.json["code"] == "invalid_client"
    response = accounts.client.post(
        "/api/v1/verify", json=answer, headers=login_form_credentials(accounts.app)
    )
    assert response.status_code == 200
    assert response.json["amr"] == ["otp"] and response.json["acr"] == "single-factor"


def test_username_alone_for_an_unknown_user_looks_the_same_and_never_succeeds(accounts: Accounts) -> None:
    accounts.user_with_phone("alice")
    known = accounts.client.post("/api/v1/verify", json={"username": "alice"}).json
    unknown = accounts.client.post("/api/v1/verify", json={"username": "mallory"}).json
    assert set(known) == set(unknown)
    assert known["methods"] == unknown["methods"] == ["otp", "fob", "webauthn"]
    for code in ("000000", "123456"):
        response = accounts.client.post(
            "/api/v1/verify",
            json={"transaction_id": unknown["transaction_id"], "otp": code},
            headers=login_form_credentials(accounts.app),
        )
        assert response.status_code == 401


def test_a_user_without_tokens_gets_an_enroll_only_session(accounts: Accounts) -> None:
    accounts.create_user("bob")
    session = accounts.login("bob")
    assert session["status"] == "enroll"
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "enroll"
    assert claims["amr"] == ["pwd"]
    assert accounts.client.get("/api/v1/me", headers=bearer(session)).status_code == 200
    assert accounts.client.get("/api/v1/tokens", headers=bearer(session)).status_code == 200
    forbidden = accounts.client.delete("/api/v1/tokens/" + "0" * 32, headers=bearer(session))
    assert forbidden.status_code == 403


def test_enroll_only_session_cannot_reach_admin(accounts: Accounts) -> None:
    accounts.create_user("root", role="admin")
    session = accounts.enroll_session("root")
    response = accounts.client.get("/api/v1/admin/users", headers=bearer(session))
    assert response.status_code == 403
    assert response.json["code"] == "forbidden"


def test_disabled_user_cannot_log_in(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    admin = accounts.admin_session()
    assert accounts.client.post("/api/v1/admin/users/alice/disable", headers=bearer(admin)).status_code == 200
    login = accounts.client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    one_step = accounts.client.post(
        "/api/v1/verify", json={"username": "alice", "otp": phone.code(accounts.clock.now())}
    )
    assert login.status_code == 401
    assert one_step.status_code == 401


def test_an_otp_refusal_changes_no_row(accounts: Accounts) -> None:
    """The OTP factor runs without a savepoint (`refusal_may_write = False`): a wrong code, and a code that a
    concurrent request used first, change no row; else a refusal would commit that change with the guess."""
    phone = accounts.user_with_phone("alice", type="hotp")
    with accounts.app.app_context():  # the token as a concurrent request read it, before the code was used
        stale = list(db.session.scalars(select(Token).where(Token.id == phone.token_id)))
        db.session.expunge_all()
        db.session.rollback()
    used = phone.code(0)
    assert accounts.client.post("/api/v1/verify", json={"username": "alice", "otp": used}).status_code == 200
    window = {pyotp.HOTP(phone.secret).at(counter) for counter in range(phone.counter + 20)}
    wrong = next(code for number in range(1_000_000) if (code := f"{number:06d}") not in window)
    changed: list[str] = []

    def count_writes(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if cursor.rowcount > 0 and statement.split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            changed.append(statement)

    with accounts.app.app_context():
        session, rt = db.session, accounts.app.extensions["tokenward"]
        event.listen(db.engine, "after_cursor_execute", count_writes)
        try:
            for answer, refusal in ((wrong, InvalidOtp), (used, ReplayedOtp)):
                with pytest.raises(refusal):
                    otp.FACTOR.verify(session, rt, transaction=None, tokens=stale, answer=answer)
        finally:
            event.remove(db.engine, "after_cursor_execute", count_writes)
            session.rollback()
    assert changed == []
