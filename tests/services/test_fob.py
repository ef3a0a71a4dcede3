"""The fob factor on an emulated fob (a real pseudo-terminal, the real `SerialFob`): challenges, counter
look-ahead and its one conditional UPDATE, the time window, replays, lockout, storing a provisioned fob."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from devices.fob.driver import SerialFob
from devices.ocra import OcraSuite, ocra_response
from server.clock import FrozenClock
from server.db import db
from server.errors import Conflict, InvalidFobResponse, TokenLocked, TransactionExpired, ValidationFailed
from server.models import AuditEvent, LoginTransaction, Token, User
from server.services import fob, users, verify
from server.services.audit import Actor
from server.services.runtime import Runtime
from server.services.token_secrets import token_secret
from server.services.transactions import begin_transaction
from tests.fobs import emulated_fob, provision, respond

ACTOR = Actor.console()
COUNTER_SUITE = "OCRA-1:HOTP-SHA256-8:C-QN08"
TIME_SUITE = "OCRA-1:HOTP-SHA512-8:QN08-T1M"


@pytest.fixture
def user(rt: Runtime) -> User:
    return users.create_user(db.session, rt, username="alice", password=None, actor=ACTOR)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[SerialFob]:
    with emulated_fob(tmp_path / "fob.json", serial="TWSVC01") as (_, serial_fob):
        yield serial_fob


def _transaction(rt: Runtime, user: User, tokens: list[Token]) -> LoginTransaction:
    transaction = begin_transaction(db.session, rt, user_id=user.id, password_verified=True)
    fob.FACTOR.challenge(db.session, rt, transaction=transaction, tokens=tokens)
    db.session.commit()
    return transaction


def _verify(rt: Runtime, transaction: LoginTransaction, response: str) -> set[str]:
    session = verify.verify_transaction(
        db.session,
        rt,
        transaction_id=transaction.id,
        answer_field="fob_response",
        answer=response,
        client=None,
        actor=ACTOR,
    )
    db.session.commit()
    return set(session.amr)


@pytest.mark.parametrize(
    ("suite", "pattern"),
    [
        ("OCRA-1:HOTP-SHA1-6:QN08", r"[0-9]{8}"),
        ("OCRA-1:HOTP-SHA1-6:QA10", r"[0-9A-Z]{10}"),
        ("OCRA-1:HOTP-SHA1-6:QH40", r"[0-9A-F]{40}"),
    ],
)
def test_the_challenge_has_the_suite_format_and_lives_on_the_transaction(
    rt: Runtime, user: User, suite: str, pattern: str
) -> None:
    token = Token(id="0" * 32, type="fob", ocra_suite=suite)
    transaction = begin_transaction(db.session, rt, user_id=user.id, password_verified=True)
    shown = fob.FACTOR.challenge(db.session, rt, transaction=transaction, tokens=[token])
    assert shown is not None and shown["suite"] == suite
    assert re.fullmatch(pattern, shown["challenge"]) and transaction.fob_challenge == shown["challenge"]
    again = fob.FACTOR.challenge(db.session, rt, transaction=transaction, tokens=[token])
    assert again is not None and again["challenge"] != shown["challenge"]  # from `secrets`, every time


@pytest.mark.parametrize(
    ("suite", "reason"),
    [
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", "PIN suites"),
        ("OCRA-1:HOTP-SHA1-6:QN08-S064", "session suites"),
        ("OCRA-1:HOTP-SHA1-0:QN08", "whole HMAC"),
        ("OCRA-1:HOTP-SHA1-6:QN08-T0H", "0H"),
        ("OCRA-1:HOTP-MD5-6:QN08", "not a valid OCRA suite"),
    ],
)
def test_suites_the_server_cannot_verify_are_refused(suite: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        fob.checked_suite(suite)


def test_the_default_suite_logs_in_once_with_hwk(rt: Runtime, user: User, driver: SerialFob) -> None:
    token = provision(db.session, rt, driver, user=user)
    transaction = _transaction(rt, user, [token])
    assert transaction.fob_challenge is not None
    response = driver.respond(transaction.fob_challenge)
    assert _verify(rt, transaction, response) == {"hwk", "pwd", "mfa"}
    with pytest.raises(TransactionExpired, match="expired or was already used"):
        _verify(rt, transaction, response)


def test_counter_look_ahead_and_advance(
    rt: Runtime, user: User, driver: SerialFob, clock: FrozenClock
) -> None:
    token = provision(db.session, rt, driver, user=user, suite=COUNTER_SUITE)
    transaction = _transaction(rt, user, [token])
    challenge = transaction.fob_challenge
    assert challenge is not None
    for _ in range(3):  # pressed without logging in: counters 0, 1, 2 are gone
        driver.respond(challenge)
    _verify(rt, transaction, respond(driver, challenge, now=clock.now()))
    db.session.refresh(token)
    assert token.counter == 4

    # an old counter value (3 is behind the stored 4) no longer answers
    stale = _transaction(rt, user, [token])
    assert stale.fob_challenge is not None
    with pytest.raises(InvalidFobResponse):
        _verify(rt, stale, driver.respond(stale.fob_challenge, counter=3))
    # beyond the look-ahead window neither
    far = _transaction(rt, user, [token])
    assert far.fob_challenge is not None
    far_counter = 4 + fob.COUNTER_LOOKAHEAD + 1
    with pytest.raises(InvalidFobResponse):
        _verify(rt, far, driver.respond(far.fob_challenge, counter=far_counter))
    # the edge of the window is accepted
    edge = _transaction(rt, user, [token])
    assert edge.fob_challenge is not None
    _verify(rt, edge, driver.respond(edge.fob_challenge, counter=4 + fob.COUNTER_LOOKAHEAD))
    db.session.refresh(token)
    assert token.counter == 4 + fob.COUNTER_LOOKAHEAD + 1


def test_the_counter_update_is_decided_by_its_row_count(rt: Runtime, user: User, driver: SerialFob) -> None:
    """Another node consumed the counter after this one read the token: the conditional UPDATE loses."""
    token = provision(db.session, rt, driver, user=user, suite=COUNTER_SUITE)
    suite = OcraSuite.parse(COUNTER_SUITE)
    key = token_secret(rt, token)
    answer = ocra_response(suite, key, question="12345678", counter=0)
    match = fob.find_fob_match(rt, token, suite, key, challenge="12345678", response=answer)
    assert match == fob.FobMatch(counter=0, time_step=None)
    db.session.execute(
        update(Token).where(Token.id == token.id).values(counter=1),
        execution_options={"synchronize_session": False},
    )
    with pytest.raises(InvalidFobResponse, match="already used"):
        fob.consume_fob_match(db.session, rt, token=token, match=match)


def test_time_window_and_replay(rt: Runtime, user: User, driver: SerialFob, clock: FrozenClock) -> None:
    token = provision(db.session, rt, driver, user=user, suite=TIME_SUITE)
    transaction = _transaction(rt, user, [token])
    challenge = transaction.fob_challenge
    assert challenge is not None
    late = respond(driver, challenge, now=clock.now() - fob.TIME_WINDOW_SECONDS - 60)
    with pytest.raises(InvalidFobResponse):
        _verify(rt, transaction, late)
    answer = respond(driver, challenge, now=clock.now() - 30)
    _verify(rt, transaction, answer)

    # the same answer to the same challenge in a fresh transaction: its time step is used up
    replay = _transaction(rt, user, [token])
    replay.fob_challenge = challenge
    db.session.commit()
    with pytest.raises(InvalidFobResponse, match="already used"):
        _verify(rt, replay, answer)
    # a later step (the host's clock a little ahead) is accepted
    ahead = _transaction(rt, user, [token])
    assert ahead.fob_challenge is not None
    _verify(rt, ahead, respond(driver, ahead.fob_challenge, now=clock.now() + 60))


def test_wrong_responses_count_toward_lockout(rt: Runtime, user: User, driver: SerialFob) -> None:
    token = provision(db.session, rt, driver, user=user)
    threshold = rt.settings.lockout_threshold
    for failure in range(threshold):
        transaction = _transaction(rt, user, [token])
        assert transaction.fob_challenge is not None
        wrong = str((int(driver.respond(transaction.fob_challenge)) + 1) % 10**6).zfill(6)
        with pytest.raises(InvalidFobResponse):
            _verify(rt, transaction, wrong)
        db.session.refresh(token)
        assert token.fail_count == failure + 1
    transaction = _transaction(rt, user, [token])
    assert transaction.fob_challenge is not None
    with pytest.raises(TokenLocked):
        _verify(rt, transaction, driver.respond(transaction.fob_challenge))
    locks = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.lock")).all()
    assert [event.target for event in locks] == [f"token:{token.id}"]


@pytest.mark.parametrize(
    "response", ["", "12345", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16", "1234567", "12 34-56x"]
)
def test_malformed_responses_are_invalid(rt: Runtime, user: User, driver: SerialFob, response: str) -> None:
    token = provision(db.session, rt, driver, user=user)
    transaction = _transaction(rt, user, [token])
    with pytest.raises(InvalidFobResponse):
        fob.FACTOR.verify(db.session, rt, transaction=transaction, tokens=[token], answer=response)


@pytest.mark.parametrize("position", ["first", "last", "none"])
def test_every_candidate_is_compared_in_constant_time(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, position: str
) -> None:
    suite = OcraSuite.parse(COUNTER_SUITE)
    key = bytes(range(32))
    token = Token(id="0" * 32, type="fob", ocra_suite=COUNTER_SUITE, counter=100)
    counter = {"first": 100, "last": 100 + fob.COUNTER_LOOKAHEAD, "none": 99}[position]
    answer = ocra_response(suite, key, question="87654321", counter=counter)
    calls: list[tuple[bytes, bytes]] = []
    real = fob.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(fob.hmac, "compare_digest", counting)
    match = fob.find_fob_match(rt, token, suite, key, challenge="87654321", response=answer)
    assert len(calls) == fob.COUNTER_LOOKAHEAD + 1
    assert match == (None if position == "none" else fob.FobMatch(counter=counter, time_step=None))


def test_a_challenge_another_fob_cannot_take_skips_that_fob(rt: Runtime, user: User, tmp_path: Path) -> None:
    with (
        emulated_fob(tmp_path / "hex.json", serial="TWHEX") as (_, hex_fob),
        emulated_fob(tmp_path / "num.json", serial="TWNUM") as (_, number_fob),
    ):
        first = provision(db.session, rt, hex_fob, user=user, suite="OCRA-1:HOTP-SHA1-6:QH40")
        second = provision(db.session, rt, number_fob, user=user)
        transaction = _transaction(rt, user, [first, second])
        assert transaction.fob_challenge is not None
        with pytest.raises(InvalidFobResponse):
            # a 40-character challenge is too long for QN08: only the first fob could answer
            _verify(rt, transaction, "123456")


def test_storing_seals_the_secret_audits_and_refuses_a_second_serial(rt: Runtime, user: User) -> None:
    secret = bytes(range(20))
    token = fob.store_fob_token(
        db.session,
        rt,
        user=user,
        serial="TW42",
        suite="OCRA-1:HOTP-SHA1-6:QN08",
        secret=secret,
        description="desk fob",
        actor=ACTOR,
        counter=1,
    )
    assert (token.type, token.state, token.serial, token.counter) == ("fob", "active", "TW42", 1)
    assert token.secret_encrypted is not None and secret not in token.secret_encrypted
    assert token_secret(rt, token) == secret
    with pytest.raises(Conflict, match="TW42"):
        fob.store_fob_token(
            db.session,
            rt,
            user=user,
            serial="TW42",
            suite="OCRA-1:HOTP-SHA1-6:QN08",
            secret=secret,
            description="",
            actor=ACTOR,
        )
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.provision")).all()
    assert [(event.result, event.reason) for event in events] == [("success", ""), ("failure", "conflict")]
    assert all(secret.hex() not in event.target for event in events)
    assert db.session.scalar(select(Token.id).where(Token.serial == "TW42")) == token.id


def test_pin_suites_are_not_stored(rt: Runtime, user: User) -> None:
    with pytest.raises(ValidationFailed, match="PIN"):
        fob.store_fob_token(
            db.session,
            rt,
            user=user,
            serial="TWPIN",
            suite="OCRA-1:HOTP-SHA1-6:QN08-PSHA1",
            secret=bytes(20),
            description="",
            actor=ACTOR,
        )
    assert db.session.scalars(select(Token)).all() == []
