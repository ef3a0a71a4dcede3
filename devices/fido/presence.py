"""User presence for the software authenticator: who "touches" the key, and how a request announces the wait.

A test decides with a `PresenceCheck`: `SoftAuthenticator(user_presence=lambda request: Presence.DENIED)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from threading import Event

from fido2.ctap import STATUS, CtapError

__all__ = [
    "Interaction",
    "Presence",
    "PresenceCheck",
    "PresenceRequest",
    "always_present",
    "require_presence",
]

ERR = CtapError.ERR


class Presence(Enum):
    """What the person did when the key asked for a touch."""

    APPROVED = "approved"
    DENIED = "denied"  # → OPERATION_DENIED
    TIMED_OUT = "timed out"  # → USER_ACTION_TIMEOUT


@dataclass(frozen=True)
class PresenceRequest:
    """Why the key wants a touch: `command` is the CTAP command ("makeCredential", "getAssertion", "reset",
    "selection"), `rp_id` the site (None for reset and selection)."""

    command: str
    rp_id: str | None


PresenceCheck = Callable[[PresenceRequest], Presence]


def always_present(request: PresenceRequest) -> Presence:
    """The default: someone touches the key every time."""
    return Presence.APPROVED


@dataclass(frozen=True)
class Interaction:
    """The caller's side of one CTAPHID call: a cancel event and the keepalive callback."""

    event: Event | None = None
    on_keepalive: Callable[[STATUS], None] | None = None

    def cancelled(self) -> bool:
        return self.event is not None and self.event.is_set()


def require_presence(check: PresenceCheck, request: PresenceRequest, interaction: Interaction) -> None:
    """Asks for a touch, announced the way a USB key announces it (a keepalive with status UPNEEDED, which
    makes `Fido2Client` call `UserInteraction.prompt_up`)."""
    if interaction.cancelled():
        raise CtapError(ERR.KEEPALIVE_CANCEL)
    if interaction.on_keepalive is not None:
        interaction.on_keepalive(STATUS.UPNEEDED)
    answer = check(request)
    if interaction.cancelled():
        raise CtapError(ERR.KEEPALIVE_CANCEL)
    if answer is Presence.DENIED:
        raise CtapError(ERR.OPERATION_DENIED)
    if answer is not Presence.APPROVED:
        raise CtapError(ERR.USER_ACTION_TIMEOUT)
