"""Argon2id costs come from the settings; a hash made at other costs still verifies and is re-made at the
configured ones on the user's next sign-in."""

from __future__ import annotations

import dataclasses

import pytest
from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import Flask

from server.app import create_app
from server.clock import FrozenClock
from server.config import Settings
from server.db import db
from server.errors import ConfigurationError
from server.models import User
from server.services import passwords
from tests.accounts import Accounts, dispose_app


def test_the_default_costs_are_rfc_9106_low_memory() -> None:
    settings = Settings.from_env({})
    assert (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    ) == (RFC_9106_LOW_MEMORY.time_cost, RFC_9106_LOW_MEMORY.memory_cost, RFC_9106_LOW_MEMORY.parallelism)


@pytest.mark.parametrize(
    ("name", "value"),
    [("TIME_COST", "0"), ("PARALLELISM", "0"), ("MEMORY_KIB", "7"), ("MEMORY_KIB", str(8 * 1024 * 1024))],
)
def test_impossible_costs_are_refused_at_start(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"TOKENWARD_PASSWORD_HASH_{name}"):
        Settings.from_env({f"TOKENWARD_PASSWORD_HASH_{name}": value})


def _stored_hash(app: Flask, username: str) -> str:
    with app.app_context():
        hashed = db.session.execute(db.select(User.password_hash).filter_by(username=username)).scalar_one()
        db.session.remove()
    assert hashed is not None
    return hashed


def test_a_sign_in_re_hashes_at_the_configured_costs(
    app: Flask, accounts: Accounts, settings: Settings, clock: FrozenClock
) -> None:
    accounts.create_user("alice")
    before = extract_parameters(_stored_hash(app, "alice"))
    stronger = create_app(
        dataclasses.replace(settings, password_hash_time_cost=before.time_cost + 1), clock=clock
    )
    try:
        Accounts(stronger, stronger.test_client(), clock).login("alice")
        after = extract_parameters(_stored_hash(stronger, "alice"))
        assert after.time_cost == before.time_cost + 1
        assert (after.memory_cost, after.parallelism) == (before.memory_cost, before.parallelism)
        assert passwords.password_matches(_stored_hash(stronger, "alice"), "wrong password") is False
    finally:
        dispose_app(stronger)
