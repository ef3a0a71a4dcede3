"""A token's type and state as enums (no database here: the console's light commands import it cheaply).

The `tokens` columns stay text: a member equals its string, so SQL filters and JSON carry plain values.
"""

from __future__ import annotations

from enum import StrEnum


class TokenType(StrEnum):
    """What a token is. Stored as its text: a member equals its string, in Python and in SQL filters."""

    TOTP = "totp"
    HOTP = "hotp"
    WEBAUTHN = "webauthn"
    FOB = "fob"


class TokenState(StrEnum):
    """Where a token is in its life: enrolled but unproven, usable, or switched off (by an admin, a fault)."""

    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"
