"""Refuses a node whose TOKENWARD_ENCRYPTION_KEY is not the one the database's secrets were sealed with.

Such a node would answer every code as wrong and seal new secrets that the other nodes cannot open. One
sealed blob is enough to tell: the newest signing key, else the newest token seed (a fresh database has
neither, and any key is then right).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import ConfigurationError
from server.models import SigningKey, Token
from server.services.crypto import SecretBox, SecretUnreadable


class EncryptionKeyMismatch(ConfigurationError):
    code, title = "encryption_key_mismatch", "The encryption key does not open this database's secrets"


def check_encryption_key(session: Session, box: SecretBox) -> None:
    signing_key = session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()).limit(1)).first()
    try:
        if signing_key is not None:
            box.open(signing_key.private_key_encrypted, associated_data=f"signing-key:{signing_key.kid}")
            return
        token = session.scalars(
            select(Token).where(Token.secret_encrypted.is_not(None)).order_by(Token.id).limit(1)
        ).first()
        if token is not None and token.secret_encrypted is not None:
            box.open(token.secret_encrypted, associated_data=f"token:{token.id}")
    except SecretUnreadable as err:
        raise EncryptionKeyMismatch(
            "the database's secrets were sealed with another TOKENWARD_ENCRYPTION_KEY; every node (and the "
            "console) must use the same key"
        ) from err
    finally:
        session.rollback()
