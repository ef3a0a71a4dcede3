"""Login with a hardware fob over the API: the `fob` challenge, the emulated fob's answer, single use under
concurrent requests, lockout, and `verify {username}`. The fob is the emulator on a real pseudo-terminal,
answered through the real `SerialFob`."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

from devices.fob.driver import SerialFob
from devices.ocra import ocra_response
from server.config import Settings
from server.db import db
from server.models import Token, User
from server.services.token_secrets import token_secret
from tests.accounts import PASSWORD, Accounts, login_form_credentials
from tests.fobs import emulated_fob, provision

LOCKOUT_THRESHOLD = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, lockout_threshold=LOCKOUT_THRESHOLD)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[SerialFob]:
    with emulated_fob(tmp_path / "fob.json", serial="TWAPI01") as (_, serial_fob):
        yield serial_fob


def _give_fob(app: Flask, accounts: Accounts, driver: SerialFob, *, suite: str | None = None) -> str:
    accounts.create_user("alice")
    with app.app_context():
        user = db.session.query(User).filter_by(username="alice").one()
        options = {} if suite is None else {"suite": suite}
        token = provision(db.session, app.extensions["tokenward"], driver, user=user, **options)
        return token.id


def _verify(accounts: Accounts, transaction_id: str, response: str, *, as_client: bool = False) -> Any:
    return accounts.client.post(
        "/api/v1/verify",
        json={"transaction_id": transaction_id, "fob_response": response},
        headers=login_form_credentials(accounts.app) if as_client else {},
    )


def test_login_shows_a_fob_challenge_and_the_fobs_answer_gives_a_session(
    app: Flask, accounts: Accounts, driver: SerialFob
) -> None:
    _give_fob(app, accounts, driver)
    challenge = accounts.login("alice")
    assert challenge["status"] == "second_factor"
    assert challenge["methods"] == ["fob"]
    assert challenge["fob"]["suite"] == "OCRA-1:HOTP-SHA1-6:QN08"
    assert len(challenge["fob"]["challenge"]) == 8 and challenge["fob"]["challenge"].isdigit()

    response = driver.respond(challenge["fob"]["challenge"])
    accepted = _verify(accounts, challenge["transaction_id"], response)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["amr"] == ["hwk", "pwd", "mfa"]
    claims = jwt.decode(accepted.json["access_token"], options={"verify_signature": False})
    assert claims["amr"] == ["hwk", "pwd", "mfa"] and claims["preferred_username"] == "alice"

    again = _verify(accounts, challenge["transaction_id"], response)
    assert again.status_code == 401 and again.json["code"] == "transaction_expired"
    # and in a new login the old answer does not fit the new challenge
    fresh = accounts.login("alice")
    refused = _verify(accounts, fresh["transaction_id"], response)
    assert refused.status_code == 401 and refused.json["code"] == "invalid_fob_response"
    assert response not in refused.get_data(as_text=True)


def test_an_answer_computed_with_devices_ocra_is_accepted(
    app: Flask, accounts: Accounts, driver: SerialFob
) -> None:
    suite = "OCRA-1:HOTP-SHA256-8:C-QA10"
    token_id = _give_fob(app, accounts, driver, suite=suite)
    challenge = accounts.login("alice")
    assert challenge["fob"]["suite"] == suite
    with app.app_context():  # not around the requests: they would share its `g`
        token = db.session.get(Token, token_id)
        assert token is not None and token.counter == 0
        key = token_secret(app.extensions["tokenward"], token)
    expected = ocra_response(suite, key, question=challenge["fob"]["challenge"], counter=0)
    accepted = _verify(accounts, challenge["transaction_id"], expected)
    assert accepted.status_code == 200, accepted.json
    with app.app_context():
        assert db.session.get(Token, token_id).counter == 1  # type: ignore[union-attr]


def test_failures_lock_the_fob(app: Flask, accounts: Accounts, driver: SerialFob) -> None:
    _give_fob(app, accounts, driver)
    for _ in range(LOCKOUT_THRESHOLD):
        challenge = accounts.login("alice")
        wrong = _verify(accounts, challenge["transaction_id"], "000000")
        assert wrong.status_code == 401 and wrong.json["code"] == "invalid_fob_response"
    challenge = accounts.login("alice")
    locked = _verify(accounts, challenge["transaction_id"], driver.respond(challenge["fob"]["challenge"]))
    assert locked.status_code == 403 and locked.json["code"] == "token_locked"


def test_username_alone_gives_a_fob_challenge(app: Flask, accounts: Accounts, driver: SerialFob) -> None:
    _give_fob(app, accounts, driver)
    started = accounts.client.post("/api/v1/verify", json={"username": "alice"})
    assert started.status_code == 200
    body = started.json
    assert body["status"] == "challenge" and body["methods"] == ["otp", "fob", "webauthn"]
    response = driver.respond(body["fob"]["challenge"])
    accepted = _verify(accounts, body["transaction_id"], response, as_client=True)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["amr"] == ["hwk"]


def test_a_phone_and_a_fob_are_both_offered(app: Flask, accounts: Accounts, driver: SerialFob) -> None:
    _give_fob(app, accounts, driver)
    first = accounts.login("alice", PASSWORD)
    session = _verify(accounts, first["transaction_id"], driver.respond(first["fob"]["challenge"])).json
    phone = accounts.enroll_phone(session)  # added with the session the fob gave
    challenge = accounts.login("alice")
    assert challenge["methods"] == ["otp", "fob"]
    accepted = accounts.client.post(
        "/api/v1/verify",
        json={"transaction_id": challenge["transaction_id"], "otp": phone.code(accounts.clock.now())},
    )
    assert accepted.status_code == 200, accepted.json


def test_concurrent_answers_at_one_counter_value_are_accepted_once(
    app: Flask, accounts: Accounts, driver: SerialFob
) -> None:
    """Two logins answered by the fob at the same counter value, verified at the same moment: the
    conditional UPDATE of the counter lets exactly one through."""
    _give_fob(app, accounts, driver, suite="OCRA-1:HOTP-SHA1-6:C-QN08")
    logins = [accounts.login("alice") for _ in range(2)]
    answers = [driver.respond(login["fob"]["challenge"], counter=0) for login in logins]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def answer(login: dict[str, Any], response: str) -> None:
        client = app.test_client()
        start.wait()
        reply = client.post(
            "/api/v1/verify", json={"transaction_id": login["transaction_id"], "fob_response": response}
        )
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=answer, args=pair) for pair in zip(logins, answers, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 401]


@pytest.mark.parametrize(
    "response",
    [
        "",
        " ",
        "-",
        "0" * 32,
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345\u00006",
        "1e6",
        "+12345",
        "٣٤٥٦٧٨",
    ],
    ids=["empty", "space", "dash", "long", "fullwidth", "nul", "float", "sign", "arabic-indic"],
)
def test_hostile_fob_responses_are_4xx(
    app: Flask, accounts: Accounts, driver: SerialFob, response: str
) -> None:
    _give_fob(app, accounts, driver)
    challenge = accounts.login("alice")
    refused = _verify(accounts, challenge["transaction_id"], response)
    assert 400 <= refused.status_code < 500, refused.json
    assert refused.json["code"] in ("invalid_fob_response", "validation_error")
