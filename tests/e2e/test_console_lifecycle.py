"""The console's lifecycle commands (issue 14, item 6): password reset, user and token delete, locked tokens
shown as locked."""

from __future__ import annotations

import json
import time

from flask import Flask
from sqlalchemy import select, update

from server.db import db
from server.models import Token, User
from server.services.audit import Actor
from server.services.seed_import import import_seed_file
from server.services.users import create_user
from tests.e2e.conftest import Console

NEW = "a new and longer passphrase"
SEEDS = (
    b"serial, key, type\n"
    b"S1, 3132333435363738393031323334353637383930, hotp\n"
    b"S2, 00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff, totp\n"
)


def test_reset_delete_and_locked_tokens(console: Console, api: Flask) -> None:
    # process=True: as the program a user starts, the family's other commands in process (console_runner.py)
    with api.app_context():  # made in process: the commands under test are what run as processes
        rt = api.extensions["tokenward"]
        for name in ("alice", "bob"):
            create_user(
                db.session, rt, username=name, password="correct horse battery", actor=Actor.console()
            )
        import_seed_file(
            db.session, rt, data=SEEDS, source="seeds.csv", username="alice", actor=Actor.console()
        )
    with api.app_context():
        # A token past the lockout threshold whose lock has not released: `locked`, not `active`.
        db.session.execute(
            update(Token).where(Token.serial == "S1").values(fail_count=10, locked_until=time.time() + 3600)
        )
        db.session.commit()
        s2 = db.session.scalar(select(Token.id).where(Token.serial == "S2"))
    rows = [
        [cell for cell in line.split() if cell != "│"]
        for line in console.ok("token", "list", process=True).splitlines()
    ]
    assert {row[1]: row[3] for row in rows if len(row) == 5 and row[1] in ("S1", "S2")} == {
        "S1": "locked",
        "S2": "active",
    }

    assert (
        console.fails("token", "delete", s2, process=True) == "error: give --yes to delete without a question"
    )
    console.ok("token", "delete", s2, "--yes")
    listed = json.loads(console.ok("token", "list", "--json"))
    assert [(view["serial"], view["locked"]) for view in listed] == [("S1", True)]

    console.ok("user", "set-password", "alice", "--password-stdin", stdin=NEW + "\n")
    client = api.test_client()
    assert client.post("/api/v1/login", json={"username": "alice", "password": NEW}).status_code == 200
    old = client.post("/api/v1/login", json={"username": "alice", "password": "correct horse battery"})
    assert old.status_code == 401
    console.ok("user", "delete", "bob", "--yes")
    with api.app_context():
        assert list(db.session.scalars(select(User.username))) == ["alice"]
    # A directory user's password (refused) and the password policy: tests/api/test_passwords.py.
