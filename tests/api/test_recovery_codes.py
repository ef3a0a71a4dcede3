"""Recovery codes and temporary codes over HTTP: ten codes of 80 bits shown once, a new set replaces the
old, each code signs in once and only after the password, never in a client's password-less transaction or
a step-up."""

from __future__ import annotations

import math
import re
from typing import Any

from flask import Flask

from tests.accounts import Accounts, PhoneToken, bearer, login_form_credentials

CODE = re.compile(r"^[a-z2-7]{4}(-[a-z2-7]{4}){3}$")  # 16 base32 letters in groups of four


def _new_codes(accounts: Accounts, session: dict[str, Any]) -> list[str]:
    response = accounts.client.post("/api/v1/recovery-codes", headers=bearer(session))
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    return list(response.json["codes"])


def _remaining(accounts: Accounts, session: dict[str, Any]) -> int:
    return int(accounts.client.get("/api/v1/recovery-codes", headers=bearer(session)).json["remaining"])


def _sign_in_with(accounts: Accounts, field: str, code: str, username: str = "bob") -> Any:
    challenge = accounts.login(username)
    return accounts.client.post(
        "/api/v1/verify", json={"transaction_id": challenge["transaction_id"], field: code}
    )


def _bob(accounts: Accounts) -> tuple[PhoneToken, dict[str, Any]]:
    phone = accounts.user_with_phone("bob")
    return phone, accounts.full_session("bob", phone)


def test_ten_strong_codes_a_new_set_replacing_the_old(accounts: Accounts) -> None:
    _, session = _bob(accounts)
    assert _remaining(accounts, session) == 0
    assert "recovery" not in accounts.login("bob")["methods"]

    old = _new_codes(accounts, session)
    assert len(old) == len(set(old)) == 10
    for code in old:
        assert CODE.match(code), code
        letters = code.replace("-", "")
        assert len(letters) * math.log2(32) >= 50
    new = _new_codes(accounts, session)
    assert not set(old) & set(new)
    assert _remaining(accounts, session) == 10

    refused = _sign_in_with(accounts, "recovery_code", old[0])
    assert (refused.status_code, refused.json["code"]) == (401, "invalid_recovery_code"), refused.json
    for field in ("otp", "temporary_code"):  # nor does a code fit another answer
        other = _sign_in_with(accounts, field, new[0] if field != "otp" else "123456")
        assert other.status_code == 401, other.json


def test_each_code_signs_in_once_and_login_offers_recovery_while_codes_remain(accounts: Accounts) -> None:
    _, session = _bob(accounts)
    codes = _new_codes(accounts, session)
    for used, code in enumerate(codes):
        challenge = accounts.login("bob")
        assert challenge["methods"] == ["otp", "recovery"], challenge
        answer = accounts.client.post(
            "/api/v1/verify",
            json={
                "transaction_id": challenge["transaction_id"],
                "recovery_code": code.upper().replace("-", " "),
            },
        )
        assert answer.status_code == 200, answer.json
        assert (answer.json["acr"], answer.json["scope"]) == ("recovery", "enroll")
        assert _remaining(accounts, session) == len(codes) - used - 1
    again = _sign_in_with(accounts, "recovery_code", codes[0])
    assert (again.status_code, again.json["code"]) == (401, "invalid_recovery_code")
    assert accounts.login("bob")["methods"] == ["otp"]


def test_codes_do_not_answer_a_clients_password_less_transaction_or_a_step_up(
    app: Flask, accounts: Accounts
) -> None:
    phone, session = _bob(accounts)
    code = _new_codes(accounts, session)[0]
    admin = accounts.admin_session()
    temporary = accounts.client.post(
        "/api/v1/admin/users/bob/temporary-code", json={"ttl": 600}, headers=bearer(admin)
    ).json["code"]

    headers = login_form_credentials(app)
    for field, value in (("recovery_code", code), ("temporary_code", temporary)):
        started = accounts.client.post("/api/v1/verify", json={"username": "bob"}, headers=headers)
        assert "recovery" not in started.json["methods"] and field not in started.json["methods"]
        refused = accounts.client.post(
            "/api/v1/verify",
            json={"transaction_id": started.json["transaction_id"], field: value},
            headers=headers,
        )
        assert (refused.status_code, refused.json["code"]) == (401, f"invalid_{field}"), refused.json

        step_up = accounts.client.post("/api/v1/step-up", headers=bearer(session)).json
        refused = accounts.client.post(
            "/api/v1/verify", json={"transaction_id": step_up["transaction_id"], field: value}
        )
        assert (refused.status_code, refused.json["code"]) == (401, f"invalid_{field}"), refused.json
        assert accounts.client.get("/api/v1/me", headers=bearer(session)).status_code == 200

    # Neither code was spent by those attempts.
    assert _sign_in_with(accounts, "recovery_code", code).status_code == 200
    assert _sign_in_with(accounts, "temporary_code", temporary).status_code == 200
    assert phone.token_id


def test_a_temporary_code_signs_in_once_and_expires(accounts: Accounts) -> None:
    admin = accounts.admin_session()
    accounts.user_with_phone("bob")

    def issue(ttl: int) -> str:
        response = accounts.client.post(
            "/api/v1/admin/users/bob/temporary-code", json={"ttl": ttl}, headers=bearer(admin)
        )
        assert response.status_code == 201, response.json
        assert response.json["expires_at"] == accounts.clock.now() + ttl
        return str(response.json["code"])

    code = issue(600)
    assert "temporary_code" in accounts.login("bob")["methods"]
    first = _sign_in_with(accounts, "temporary_code", code)
    assert first.status_code == 200, first.json
    assert first.json["amr"] == ["pwd", "temporary_code"]
    assert "temporary_code" not in accounts.login("bob")["methods"]
    second = _sign_in_with(accounts, "temporary_code", code)
    assert (second.status_code, second.json["code"]) == (401, "invalid_temporary_code")

    replaced = issue(600)
    newest = issue(120)
    assert _sign_in_with(accounts, "temporary_code", replaced).status_code == 401
    accounts.clock.advance(120)
    assert _sign_in_with(accounts, "temporary_code", newest).status_code == 401
    too_long = accounts.client.post(
        "/api/v1/admin/users/bob/temporary-code", json={"ttl": 31 * 86_400}, headers=bearer(admin)
    )
    assert too_long.status_code == 422
