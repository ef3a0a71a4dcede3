"""Re-sealing in batches, in-process: counts, resumption, secrets no configured key opens."""

from __future__ import annotations

import secrets

import pytest
from flask import Flask
from sqlalchemy import update

from server.db import db
from server.models import Token
from server.services.crypto import SecretBox, SecretUnreadable
from server.services.key_rotation import rotate_all, rotate_batch
from server.services.runtime import Runtime
from server.services.sealed_columns import SEALED_COLUMNS
from server.services.token_secrets import token_secret
from tests.accounts import Accounts

TOKENS = SEALED_COLUMNS[1]


def _box_after_rotation(rt: Runtime) -> tuple[SecretBox, bytes]:
    """A box whose current key is new, with the app's key (read from the app's settings) as the old one."""
    new_key = secrets.token_bytes(32)
    return SecretBox(new_key, old_keys=[bytes.fromhex(rt.settings.encryption_key)]), new_key


def test_batches_resume_and_skip_what_is_done(app: Flask, accounts: Accounts) -> None:
    for name in ("ana", "ben", "cho"):
        accounts.user_with_phone(name)
    with app.app_context():
        _batches_resume(app.extensions["tokenward"])


def _batches_resume(rt: Runtime) -> None:
    box, new_key = _box_after_rotation(rt)
    session = db.session
    after, first = rotate_batch(session, box, TOKENS, after=None, batch_size=2)
    assert (first.rotated, after is not None) == (2, True)

    report = rotate_all(session, box, batch_size=2)  # a new run: the first two are skipped
    tokens = report.by_table["tokens"]
    assert (tokens.rotated, tokens.already_current, tokens.unreadable) == (1, 2, 0)
    assert report.by_table["signing_keys"].rotated >= 1 and report.total.complete

    session.expire_all()
    for token in session.query(Token).all():
        assert box.sealed_with_current_key(token.secret_encrypted or b"")
        assert SecretBox(new_key).open(token.secret_encrypted or b"", associated_data=f"token:{token.id}")
        with pytest.raises(SecretUnreadable):  # the old key alone no longer opens it
            token_secret(rt, token)
    rotate_again = rotate_all(session, box, batch_size=2).total
    assert (rotate_again.rotated, rotate_again.changed_meanwhile) == (0, 0)


def test_a_secret_no_configured_key_opens_is_counted_and_left(app: Flask, accounts: Accounts) -> None:
    accounts.user_with_phone("ana")
    with app.app_context():
        _foreign_secret_left(app.extensions["tokenward"])


def _foreign_secret_left(rt: Runtime) -> None:
    session = db.session
    stranger = SecretBox(secrets.token_bytes(32))
    token = session.query(Token).one()
    foreign = stranger.seal(b"seed", associated_data=f"token:{token.id}")
    session.execute(update(Token).where(Token.id == token.id).values(secret_encrypted=foreign))
    session.commit()
    box, _new_key = _box_after_rotation(rt)
    report = rotate_all(session, box, batch_size=10)
    assert report.by_table["tokens"].unreadable == 1 and not report.total.complete
    session.expire_all()
    assert session.get(Token, token.id).secret_encrypted == foreign  # type: ignore[union-attr]
