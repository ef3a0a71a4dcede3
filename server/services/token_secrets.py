"""Token seeds at rest: sealed with AES-GCM, the token's id as associated data (a copied blob won't open)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.errors import NotFound
from server.models import Token
from server.services.runtime import Runtime

if TYPE_CHECKING:
    from server.services.verify_rows import TokenRow


def seal_secret(rt: Runtime, token: Token, key: bytes) -> None:
    token.secret_encrypted = rt.box.seal(key, associated_data=f"token:{token.id}")


def token_secret(rt: Runtime, token: Token | TokenRow) -> bytes:
    if token.secret_encrypted is None:
        raise NotFound("This token has no secret")
    return rt.box.open(token.secret_encrypted, associated_data=f"token:{token.id}")
