"""Whether a directory user may still sign in, asked of the directory where no password was checked.

A password check binds as the user and so sees a removal or a disabling at once. A sign-in without one (a
registered client's one-step code or `verify {username}`, a passkey, a step-up, a refresh) would otherwise
trust the row as the last sign-in or sync left it: the directory is asked by the user's stable id, with the
service account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.errors import InvalidCredentials
from server.models import User
from server.services.runtime import Runtime

if TYPE_CHECKING:
    from server.services.verify_rows import UserRow

DIRECTORY_REFUSED = "directory_refused"  # the audit reason: removed, disabled there, or outside the group


def confirm_directory_standing(rt: Runtime, *, user: User | UserRow) -> None:
    """Nothing for a local user. A directory user whom their directory no longer lets sign in (or whose
    directory is no longer configured) is `InvalidCredentials`; a directory that does not answer is
    `DirectoryUnavailable` (503), never a fall-back to the row."""
    if user.source == rt.directories.local.source:
        return
    external = rt.directories.external
    found = None
    if external is not None and external.source == user.source and user.external_id:
        found = external.find_by_id(user.external_id)
    if found is None or not found.may_sign_in:
        refused = InvalidCredentials()
        refused.audit_reason = DIRECTORY_REFUSED
        raise refused
