"""An LDAP / Active Directory user directory on ldap3.

A password is checked by binding as the user (over TLS unless the directory is on this machine or an operator
allowed otherwise); Tokenward never stores or logs it. A service account (or an anonymous bind) finds the user
and reads their groups on pooled connections. The URLs are tried in order, starting with the last one that
answered; a directory that does not answer within the timeout is `DirectoryUnavailable` (503), never a
fall-back. Its error text goes to the log only.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from server.config import Settings, is_loopback_url, parse_ldap_attributes
from server.directories.base import DirectoryUser
from server.errors import DirectoryUnavailable
from server.models import User

log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE = "ldap"
# userAccountControl flag of a disabled account (Active Directory, MS-ADTS 2.2.16).
ACCOUNTDISABLE = 0x0002
# Longer names are nobody's: they get the unknown-name work without a search.
MAX_USERNAME_LENGTH = 256
# Service connections kept open between requests, per process.
IDLE_CONNECTIONS = 4
INVALID_CREDENTIALS = 49  # LDAP result code of a failed bind
SIZE_LIMIT_EXCEEDED = 4
PAGE_SIZE = 500


@dataclass(frozen=True)
class LdapConfig:
    urls: tuple[str, ...]
    user_base: str
    user_filter: str
    attributes: dict[str, str]
    bind_dn: str = ""
    bind_password: str = ""
    ca_file: str = ""
    login_group: str = ""
    admin_group: str = ""
    starttls: str = "auto"
    allow_plain_bind: bool = False
    timeout_seconds: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapConfig:
        password = ""
        if settings.ldap_bind_password_file:
            lines = Path(settings.ldap_bind_password_file).read_text(encoding="utf-8").splitlines()
            password = lines[0] if lines else ""
        return cls(
            urls=tuple(settings.ldap_url.split()),
            user_base=settings.ldap_user_base,
            user_filter=settings.ldap_user_filter,
            attributes=parse_ldap_attributes(settings.ldap_attributes),
            bind_dn=settings.ldap_bind_dn,
            bind_password=password,
            ca_file=settings.ldap_ca_file,
            login_group=settings.ldap_login_group,
            admin_group=settings.ldap_admin_group,
            starttls=settings.ldap_starttls,
            allow_plain_bind=settings.ldap_allow_plain_bind,
            timeout_seconds=settings.ldap_timeout,
        )


class _Unanswered(Exception):
    """One server did not answer (or would not secure the connection): try the next."""


def _normalise_dn(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


class LdapDirectory:
    source = SOURCE

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=config.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self._servers = [
            Server(url, tls=tls, connect_timeout=config.timeout_seconds, get_info=NONE) for url in config.urls
        ]
        self._preferred = 0  # the server that answered last
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue(maxsize=IDLE_CONNECTIONS)
        self._attributes = sorted(set(config.attributes.values()))
        # A DN nobody has: an unknown name costs a bind that fails, as a wrong password does.
        self._decoy_dn = f"cn=tokenward-no-such-user-{secrets.token_hex(8)},{config.user_base}"

    @classmethod
    def from_settings(cls, settings: Settings) -> LdapDirectory:
        return cls(LdapConfig.from_settings(settings))

    def check_password(self, *, username: str, password: str, known: User | None) -> DirectoryUser | None:
        def check(service: Connection) -> DirectoryUser | None:
            entry = None
            if len(username) <= MAX_USERNAME_LENGTH:
                entries = self._search(service, self._user_filter(username), size_limit=2)
                # Two entries for one name: the filter does not identify people, and nobody signs in by it.
                entry = entries[0] if len(entries) == 1 else None
            # An empty password would be an unauthenticated bind (RFC 4513 5.1.2), which succeeds: refused.
            if not password or not self._bind_succeeds(entry["dn"] if entry else self._decoy_dn, password):
                return None
            return None if entry is None else self._describe(service, entry)

        return self._with_service(check)

    def find_by_id(self, external_id: str) -> DirectoryUser | None:
        """The person with this stable id whom the user filter still matches, found by the service account;
        None when there is nobody (removed, or no longer matched)."""

        def lookup(service: Connection) -> DirectoryUser | None:
            name = self.config.attributes["id"]
            by_id = f"({name}={_id_filter_value(name, external_id)})"
            entries = self._search(service, f"(&{self._everyone_filter()}{by_id})", size_limit=2)
            return self._describe(service, entries[0]) if len(entries) == 1 else None

        return self._with_service(lookup)

    def list_users(self) -> list[DirectoryUser]:
        def everyone(service: Connection) -> list[DirectoryUser]:
            entries = self._search(service, self._everyone_filter(), paged=True)
            return [self._describe(service, entry) for entry in entries]

        return self._with_service(everyone)

    def close(self) -> None:
        """Closes the pooled service connections (a process that ends need not call it)."""
        while True:
            try:
                _discard(self._idle.get_nowait())
            except queue.Empty:
                return

    # Connections ---------------------------------------------------------------------------------------

    def _everyone_filter(self) -> str:
        return self.config.user_filter.replace("{username}", "*")  # `(uid=*)`: everyone

    def _user_filter(self, username: str) -> str:
        return self.config.user_filter.replace("{username}", escape_filter_chars(username))

    def _open(self, user: str | None, password: str | None) -> Connection:
        """An open, secured, not yet bound connection to the first server that answers, starting with the one
        that answered last; `DirectoryUnavailable` when none does."""
        count = len(self._servers)
        start = self._preferred
        for step in range(count):
            index = (start + step) % count
            # ldap3 would skip an address that failed in the last 5 s; the order here is ours to decide, and
            # a directory that came back is used at once.
            self._servers[index].reset_availability()
            connection = Connection(
                self._servers[index],
                user=user,
                password=password,
                receive_timeout=self.config.timeout_seconds,
                auto_referrals=False,
                read_only=True,
                raise_exceptions=False,
            )
            try:
                self._connect(connection, index)
            except (_Unanswered, LDAPException, OSError) as err:
                log.warning("directory %s did not answer: %s", self.config.urls[index], _safe(err))
                _discard(connection)
                continue
            self._preferred = index
            return connection
        raise DirectoryUnavailable()

    def _connect(self, connection: Connection, index: int) -> None:
        connection.open(read_server_info=False)
        if self._servers[index].ssl:
            return
        loopback = is_loopback_url(self.config.urls[index])
        if self.config.starttls == "always" or (self.config.starttls == "auto" and not loopback):
            if not connection.start_tls(read_server_info=False):
                raise _Unanswered("StartTLS refused")
        elif not loopback and not self.config.allow_plain_bind:
            raise _Unanswered("refusing a plain bind to a remote directory")  # Settings.check stops it first

    def _with_service(self, work: Callable[[Connection], T]) -> T:
        """`work` on a service-account connection from the pool (or a new one). A pooled connection that
        broke (the directory restarted) is dropped and the work runs again; a new one that breaks is a 503."""
        while True:
            try:
                connection, pooled = self._idle.get_nowait(), True
            except queue.Empty:
                connection, pooled = self._service_connection(), False
            try:
                result = work(connection)
            except _Broken:
                _discard(connection)
                if pooled:
                    continue
                raise DirectoryUnavailable() from None
            except BaseException:
                _discard(connection)
                raise
            try:
                self._idle.put_nowait(connection)
            except queue.Full:
                connection.unbind()
            return result

    def _service_connection(self) -> Connection:
        """Bound as the service account, or anonymous when none is configured."""
        if not self.config.bind_dn:
            return self._open(None, None)
        connection = self._open(self.config.bind_dn, self.config.bind_password)
        try:
            bound = connection.bind()
        except (LDAPException, OSError) as err:
            log.warning("service bind failed: %s", _safe(err))
            bound = False
        if not bound:
            log.error("the directory refused the service account: %s", connection.result)
            connection.unbind()
            raise DirectoryUnavailable()
        return connection

    def _bind_succeeds(self, dn: str, password: str) -> bool:
        """A bind as `dn` on a connection of its own: True, False (wrong password or no such DN), or
        `DirectoryUnavailable` for anything else."""
        connection = self._open(dn, password)
        try:
            if connection.bind():
                return True
            if connection.result.get("result") == INVALID_CREDENTIALS:
                return False
            log.warning("user bind failed: %s", connection.result.get("description"))
            raise DirectoryUnavailable()
        except (LDAPException, OSError) as err:
            log.warning("user bind failed: %s", _safe(err))
            raise DirectoryUnavailable() from None
        finally:
            connection.unbind()

    # Searches ------------------------------------------------------------------------------------------

    def _search(
        self, connection: Connection, search_filter: str, *, size_limit: int = 0, paged: bool = False
    ) -> list[dict[str, Any]]:
        try:
            if paged:
                responses = connection.extend.standard.paged_search(
                    self.config.user_base,
                    search_filter,
                    SUBTREE,
                    attributes=self._attributes,
                    paged_size=PAGE_SIZE,
                    time_limit=self.config.timeout_seconds,
                    generator=False,
                )
                ok = connection.result.get("result") == 0
            else:
                connection.search(
                    self.config.user_base,
                    search_filter,
                    SUBTREE,
                    attributes=self._attributes,
                    size_limit=size_limit,
                    time_limit=self.config.timeout_seconds,
                )
                responses = connection.response or []
                ok = connection.result.get("result") in (0, SIZE_LIMIT_EXCEEDED)
        except (LDAPException, OSError) as err:
            log.warning("directory search failed: %s", _safe(err))
            raise _Broken() from None
        if not ok:
            log.error("directory search failed: %s", connection.result.get("description"))
            raise _Broken()
        return [item for item in responses if item.get("type") == "searchResEntry"]

    def _is_member(
        self, connection: Connection, group_dn: str, *, dn: str, username: str, groups: set[str] | None
    ) -> bool:
        """By the user's `memberOf` values when mapped (`groups=`), else by asking the group entry whether it
        lists the user (`member`, `uniqueMember` or `memberUid`)."""
        if groups is not None:
            return _normalise_dn(group_dn) in groups
        member_filter = "(|(member={0})(uniqueMember={0})(memberUid={1}))".format(
            escape_filter_chars(dn), escape_filter_chars(username)
        )
        try:
            found = connection.search(group_dn, member_filter, BASE, attributes=[], size_limit=1)
        except (LDAPException, OSError) as err:
            log.warning("directory group search failed: %s", _safe(err))
            raise _Broken() from None
        return bool(found)

    def _describe(self, connection: Connection, entry: dict[str, Any]) -> DirectoryUser:
        attributes = self.config.attributes
        raw = entry["raw_attributes"]
        username = _text(raw, attributes["username"])
        groups = None
        if "groups" in attributes:
            groups = {
                _normalise_dn(value.decode("utf-8", "replace")) for value in raw.get(attributes["groups"], [])
            }
        member = {
            group: self._is_member(connection, group, dn=entry["dn"], username=username, groups=groups)
            for group in (self.config.login_group, self.config.admin_group)
            if group
        }
        control = _text(raw, attributes["account_control"]) if "account_control" in attributes else ""
        disabled = control.isascii() and control.isdigit() and bool(int(control) & ACCOUNTDISABLE)
        admin = member.get(self.config.admin_group) if self.config.admin_group else None
        in_login_group = not self.config.login_group or member[self.config.login_group] or bool(admin)
        return DirectoryUser(
            source=SOURCE,
            external_id=_external_id(raw, attributes["id"]),
            username=username,
            display_name=_text(raw, attributes["display_name"]) if "display_name" in attributes else "",
            email=_text(raw, attributes["email"]) if "email" in attributes else "",
            admin=admin,
            may_sign_in=not disabled and in_login_group and bool(username),
        )


class _Broken(Exception):
    """A pooled connection failed mid-request."""


def _discard(connection: Connection) -> None:
    """Unbinds, and closes the socket a failed open leaves behind (ldap3 does not)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    leftover = getattr(connection, "socket", None)
    if leftover is not None:
        leftover.close()


def _safe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


def _text(raw: Any, name: str) -> str:
    values = raw.get(name) or []
    return values[0].decode("utf-8", "replace") if values else ""


def _id_filter_value(name: str, external_id: str) -> str:
    """`_external_id` undone and escaped for a filter (RFC 4515): AD's GUID as its 16 bytes."""
    if name.lower() == "objectguid":
        with contextlib.suppress(ValueError):
            return "".join(f"\\{byte:02x}" for byte in uuid.UUID(external_id).bytes_le)
    return str(escape_filter_chars(external_id))


def _external_id(raw: Any, name: str) -> str:
    values = raw.get(name) or []
    if not values:
        raise DirectoryUnavailable("The directory entry has no stable id attribute")
    value: bytes = values[0]
    if name.lower() == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))  # AD's GUID, in the form AD tools show
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return value.hex()
