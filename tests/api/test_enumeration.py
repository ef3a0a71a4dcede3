"""A registered client learns nothing about which names exist or what tokens they hold: `verify {username}`
and one-step wrong codes answer alike for an unknown name, a user without tokens, and users with a phone, a
security key or a fob; the audit log says why, without storing a name nobody has.

The timing side of the same promise is measured against a real server in tests/e2e/test_session_races.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from devices.fob.driver import SerialFob
from server.db import db
from server.models import AuditEvent, User
from tests.accounts import Accounts
from tests.fobs import emulated_fob, provision
from tests.webauthn_client import SecurityKey

UNKNOWN = "nobody-f00dcafe"
NAMES = (UNKNOWN, "bare", "phone", "key", "fob")


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[SerialFob]:
    with emulated_fob(tmp_path / "fob.json", serial="TWENUM1") as (_, serial_fob):
        yield serial_fob


@pytest.fixture
def population(app: Flask, accounts: Accounts, driver: SerialFob) -> None:
    """bare: no token; phone: a TOTP; key: a passkey; fob: an emulated fob. UNKNOWN does not exist."""
    accounts.create_user("bare")
    accounts.user_with_phone("phone")
    accounts.create_user("key")
    SecurityKey(accounts.client).enroll(accounts.enroll_session("key"))
    accounts.create_user("fob")
    with app.app_context():
        user = db.session.query(User).filter_by(username="fob").one()
        provision(db.session, app.extensions["tokenward"], driver, user=user)


def _shape(value: Any) -> Any:
    """Keys and value types, not values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


@pytest.mark.usefixtures("population")
def test_verify_username_answers_alike_for_every_kind_of_name(app: Flask, accounts: Accounts) -> None:
    answers = {}
    for name in NAMES:
        response = accounts.client.post("/api/v1/verify", json={"username": name})
        assert response.status_code == 200, (name, response.json)
        answers[name] = response.json
    shapes = {name: _shape(answer) for name, answer in answers.items()}
    for name in NAMES:
        assert shapes[name] == shapes[UNKNOWN], name
        answer = answers[name]
        assert answer["status"] == "challenge"
        assert answer["methods"] == ["otp", "fob", "webauthn"], (name, answer)
        assert answer["fob"]["suite"] == answers[UNKNOWN]["fob"]["suite"], (name, answer)
        assert answer["fob"]["challenge"].isdigit() and len(answer["fob"]["challenge"]) == 8, answer
        public_key = answer["webauthn"]["publicKey"]
        assert "allowCredentials" not in public_key, (name, public_key)
        assert public_key["userVerification"] == "required", (name, public_key)
    # Fresh values each time, as a real challenge has.
    assert len({answer["transaction_id"] for answer in answers.values()}) == len(NAMES)


@pytest.mark.usefixtures("population")
def test_one_step_wrong_codes_answer_alike(accounts: Accounts) -> None:
    answers = [
        accounts.client.post("/api/v1/verify", json={"username": name, "otp": "000000"}) for name in NAMES
    ]
    for response in answers:
        assert (response.status_code, response.json) == (answers[0].status_code, answers[0].json)
    assert (answers[0].status_code, answers[0].json["code"]) == (401, "invalid_otp")


@pytest.mark.usefixtures("population")
def test_the_audit_log_says_why_without_storing_an_unknown_name(app: Flask, accounts: Accounts) -> None:
    for name in NAMES:
        accounts.client.post("/api/v1/verify", json={"username": name})
        accounts.client.post("/api/v1/verify", json={"username": name, "otp": "000000"})
    with app.app_context():
        events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
        rows = [(e.action, e.target, e.result, e.reason) for e in events]
        stored = [str(vars(event)) for event in events]
    challenges = [row for row in rows if row[0] == "login.challenge"]
    assert challenges == [
        ("login.challenge", "", "failure", "unknown_user"),
        ("login.challenge", "bare", "failure", "no_usable_token"),
        ("login.challenge", "phone", "success", ""),
        ("login.challenge", "key", "success", ""),
        ("login.challenge", "fob", "success", ""),
    ]
    one_step = [row for row in rows if row[0] == "verify.otp"]
    assert one_step == [
        ("verify.otp", "", "failure", "unknown_user"),
        ("verify.otp", "bare", "failure", "no_usable_token"),
        ("verify.otp", "phone", "failure", "invalid_otp"),
        ("verify.otp", "key", "failure", "no_usable_token"),
        ("verify.otp", "fob", "failure", "no_usable_token"),
    ]
    assert not [row for row in stored if UNKNOWN in row]
