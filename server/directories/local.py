"""The local directory: users whose Argon2id password hash lives in this database."""

from __future__ import annotations

from server.directories.base import DirectoryUser
from server.models import User
from server.services.passwords import password_matches


class LocalDirectory:
    source = "local"

    def check_password(self, *, username: str, password: str, known: User | None) -> DirectoryUser | None:
        """One Argon2 verification whatever the name: a missing or foreign row spends it on a dummy hash."""
        local = known if known is not None and known.source == self.source else None
        if not password_matches(local.password_hash if local else None, password) or local is None:
            return None
        return DirectoryUser(
            source=self.source,
            external_id=local.uid,
            username=local.username,
            display_name=local.display_name or "",
            email=local.email or "",
            admin=local.role == "admin",
            may_sign_in=not local.disabled,
        )
