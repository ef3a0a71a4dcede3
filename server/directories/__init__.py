"""User directories: where people and their passwords live, behind one small interface.

The local directory (this database) is always there, for administrators and break-glass accounts; an LDAP /
Active Directory one joins it when `TOKENWARD_LDAP_URL` is set. Which one checks a password depends on the
user: a local row is checked locally, any other name by the directory. Nothing here imports Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Settings
from server.directories.base import DirectoryUser, ExternalDirectory, UserDirectory
from server.directories.local import LocalDirectory
from server.models import User

__all__ = ["Directories", "DirectoryUser", "ExternalDirectory", "UserDirectory", "open_directories"]


@dataclass(frozen=True)
class Directories:
    local: UserDirectory
    external: ExternalDirectory | None = None

    def for_user(self, user: User | None) -> UserDirectory:
        """The directory that checks this name's password: the local one for a local row (or when no other
        is configured), the external one for its own rows and for names this database does not hold."""
        if self.external is None or (user is not None and user.source == self.local.source):
            return self.local
        return self.external


def open_directories(settings: Settings) -> Directories:
    """Chosen by configuration, as devices are: no URL, local users only."""
    if not settings.ldap_url:
        return Directories(local=LocalDirectory())
    from server.directories.ldap import LdapDirectory  # ldap3 is loaded only when a directory is configured

    return Directories(local=LocalDirectory(), external=LdapDirectory.from_settings(settings))
