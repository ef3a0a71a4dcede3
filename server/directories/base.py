"""The interface every user directory implements, and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from server.models import User


@dataclass(frozen=True)
class DirectoryUser:
    """A person as their directory describes them."""

    source: str  # the directory's name, stored in `users.source`
    external_id: str  # stable across renames (entryUUID, objectGUID; the local user's uid)
    username: str
    display_name: str = ""
    email: str = ""
    admin: bool | None = None  # None: the directory does not decide roles
    # False: disabled there (AD's userAccountControl) or outside the login group.
    may_sign_in: bool = True


class UserDirectory(Protocol):
    source: str

    def check_password(self, *, username: str, password: str, known: User | None) -> DirectoryUser | None:
        """The person when the password is theirs; None for an unknown name or a wrong password, after the
        same work. `known` is the row this database holds under the name, if any. Raises
        `DirectoryUnavailable` when the directory does not answer; never falls back to anything else."""
        ...


class ExternalDirectory(UserDirectory, Protocol):
    def find_by_id(self, external_id: str) -> DirectoryUser | None:
        """The person with this stable id, looked up by the service account (for sign-ins without a
        password); None when the directory no longer has them. Raises `DirectoryUnavailable`."""
        ...

    def list_users(self) -> list[DirectoryUser]:
        """Everyone the user filter matches (for `tokenward user sync`). Raises `DirectoryUnavailable`."""
        ...

    def close(self) -> None:
        """Lets go of any connections it keeps."""
        ...
