"""The seam between login and each kind of second factor (OTP, fob, WebAuthn).

A factor answers two questions: what does a login transaction show the user (a fob challenge, WebAuthn
request options), and does this answer prove possession of one of the user's tokens. Lockout, attempts,
audit and session issuance stay in `login`, the same for every factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from server.models import LoginTransaction, Token
from server.services.runtime import Runtime


@dataclass(frozen=True)
class Accepted:
    """A verified answer. The token's single-use state was consumed, but nothing is committed yet."""

    token: Token
    amr: tuple[str, ...]  # RFC 8176 values this factor contributes, e.g. ("otp",) or ("hwk",)
    phishing_resistant: bool = False  # a WebAuthn assertion: bound to this site's origin


class Factor(Protocol):
    method: str  # the name listed in a transaction's `methods`
    answer_field: str  # the verify body field that carries the answer
    token_types: tuple[str, ...]
    # Whether a refused answer may leave writes behind (a key's sign count, a cloned key disabled): then the
    # check runs in a savepoint that a refusal rolls back. A factor that writes only on acceptance needs none.
    refusal_may_write: bool

    def challenge(
        self, session: Session, rt: Runtime, *, transaction: LoginTransaction, tokens: list[Token]
    ) -> dict[str, Any] | None:
        """Stores what the answer will be checked against on `transaction`; returns what the client is shown
        under the key `method` (None: nothing to show, as for OTP)."""
        ...

    def verify(
        self,
        session: Session,
        rt: Runtime,
        *,
        transaction: LoginTransaction | None,
        tokens: list[Token],
        answer: Any,
    ) -> Accepted:
        """Checks `answer` against the unlocked `tokens` and consumes what makes it single use (a conditional
        UPDATE). Raises a TokenwardError on failure. Never commits."""
        ...
