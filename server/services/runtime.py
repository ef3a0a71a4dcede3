"""What every service needs besides the database session: settings, time, the secret box, the key ring,
the user directories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.clock import Clock
from server.config import Settings
from server.directories import Directories
from server.services.crypto import SecretBox

if TYPE_CHECKING:
    from server.services.keys import KeyRing


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    clock: Clock
    box: SecretBox
    keys: KeyRing
    directories: Directories  # where people and their passwords live (local, and LDAP when configured)

    def now(self) -> float:
        return self.clock.now()
