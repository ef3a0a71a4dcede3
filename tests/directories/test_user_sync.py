"""`tokenward user sync` as a real console process against slapd: people admitted ahead of sign-in, renames
followed, the departed and the disabled disabled (sessions and sign-ins under way ended), nobody re-enabled;
a down directory changes nothing."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from server.models import LoginTransaction, User
from tests.directories.conftest import directory_console
from tests.directories.slapd import ADMIN_GROUP, LOGIN_GROUP, Slapd
from tests.e2e.conftest import Console


def _users(console: Console) -> dict[str, dict[str, Any]]:
    return {user["username"]: user for user in json.loads(console.ok("user", "list", "--json"))}


def _sign_in_under_way(console: Console, *, username: str) -> str:
    """A login transaction of the user's, as a password sign-in leaves it (answered with a code next)."""
    engine = create_engine(console.database_url)
    try:
        with Session(engine) as session:
            user_id = session.scalars(select(User.id).where(User.username == username)).one()
            now = time.time()
            transaction = LoginTransaction(
                id=secrets.token_urlsafe(24),
                user_id=user_id,
                password_verified=True,
                created_at=now,
                expires_at=now + 300,
                attempts=0,
                max_attempts=5,
                decoy=False,
            )
            session.add(transaction)
            session.commit()
            return transaction.id
    finally:
        engine.dispose()


def _ended(console: Console, transaction_id: str) -> bool:
    engine = create_engine(console.database_url)
    try:
        with Session(engine) as session:
            return session.get_one(LoginTransaction, transaction_id).consumed_at is not None
    finally:
        engine.dispose()


def test_sync_admits_follows_renames_and_disables(
    tmp_path: Path, database_url: str, slapd: Slapd, service_password_file: Path
) -> None:
    console = directory_console(tmp_path, database_url, slapd, service_password_file)
    console.ok("user", "add", "root-admin", "--admin", "--password-stdin", stdin="a local password\n")

    first = json.loads(console.ok("user", "sync", "--json"))

    # carol is outside the login group, dave disabled in the directory, "erin smith" no usable name.
    assert sorted(first["created"]) == ["alice", "bob"]
    assert first["skipped"] == ["erin smith"]
    users = _users(console)
    assert {name: (u["source"], u["role"], u["disabled"]) for name, u in users.items()} == {
        "root-admin": ("local", "admin", False),
        "alice": ("ldap", "user", False),
        "bob": ("ldap", "admin", False),
    }
    alice_id = users["alice"]["id"]

    slapd.rename("alice", "alicia")
    slapd.set_group(LOGIN_GROUP, ["alicia", "bob"])
    slapd.set_group(ADMIN_GROUP, ["alicia"])
    second = json.loads(console.ok("user", "sync", "--json"))
    assert sorted(second["updated"]) == ["alicia", "bob"]
    users = _users(console)
    assert users["alicia"]["id"] == alice_id  # the same row: tokens and sessions stay
    assert (users["alicia"]["role"], users["bob"]["role"]) == ("admin", "user")

    signing_in = _sign_in_under_way(console, username="bob")
    slapd.set_account_control("bob", 514)
    slapd.delete("alicia")
    third = json.loads(console.ok("user", "sync", "--json"))
    assert sorted(third["disabled"]) == ["alicia", "bob"]
    users = _users(console)
    assert users["alicia"]["disabled"] and users["bob"]["disabled"]
    assert not users["root-admin"]["disabled"]
    assert _ended(console, signing_in)  # a sync's disable ends sign-ins under way, as an admin's does

    slapd.set_account_control("bob", 512)
    fourth = json.loads(console.ok("user", "sync", "--json"))
    assert fourth["disabled"] == [] and _users(console)["bob"]["disabled"]  # never re-enabled by a sync


def test_sync_with_the_directory_down_fails_and_changes_nothing(
    tmp_path: Path, database_url: str, slapd: Slapd, service_password_file: Path
) -> None:
    console = directory_console(tmp_path, database_url, slapd, service_password_file)
    console.ok("user", "sync")
    before = _users(console)
    slapd.stop()

    result = console.run("user", "sync")

    # The log line before it names the URL and the reason, for the operator.
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "error: The user directory is not reachable; try again shortly"
    assert _users(console) == before


def test_sync_without_a_directory_says_so(tmp_path: Path, database_url: str) -> None:
    line = Console(tmp_path, database_url).fails("user", "sync")
    assert line == "error: no directory is configured (TOKENWARD_LDAP_URL)"
