"""Settings: the one reader of `TOKENWARD_*` environment variables (and of the TOML file TOKENWARD_CONFIG
names, server.config_file, whose keys are the same settings; the environment wins).

Every value is typed and checked at start; a bad variable fails with its name.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.config_file import merged_environment
from server.errors import ConfigurationError

# Added to the statement timeout for the client's deadline: the server's own cancel should win when it can.
CLIENT_DEADLINE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class DatabaseTimeouts:
    connect_seconds: int  # TCP connect, TLS and authentication together
    statement_seconds: int  # 0: no limit (the client deadline is then the ceiling alone, if any)

    @property
    def answer_seconds(self) -> float | None:
        """The client-side deadline for any one answer."""
        return self.statement_seconds + CLIENT_DEADLINE_MARGIN_SECONDS if self.statement_seconds else None


PREFIX = "TOKENWARD_"
DRIVER_NAME_SHOWN_MAX_CHARS = 40  # a bad URL's `dialect+driver` part is shown, cut
_LIMIT_ITEM = re.compile(r"^(ip|user)=(\d+\s*/\s*(second|minute|hour|day))$")
# What TOKENWARD_LDAP_ATTRIBUTES may map: the first two are needed, the rest optional.
LDAP_ATTRIBUTE_KEYS = ("username", "id", "display_name", "email", "account_control", "groups")
_LDAP_ATTRIBUTE_ITEM = re.compile(r"^([a-z_]+)=([A-Za-z][A-Za-z0-9-]*)$")


def parse_ldap_attributes(text: str) -> dict[str, str]:
    """`username=uid id=entryUUID display_name=cn email=mail` → {key: directory attribute}."""
    mapping: dict[str, str] = {}
    for item in text.split():
        match = _LDAP_ATTRIBUTE_ITEM.match(item)
        if not match or match.group(1) not in LDAP_ATTRIBUTE_KEYS or match.group(1) in mapping:
            raise ValueError(f"expected items key=attribute with keys from {', '.join(LDAP_ATTRIBUTE_KEYS)}")
        mapping[match.group(1)] = match.group(2)
    if "username" not in mapping or "id" not in mapping:
        raise ValueError("username= and id= are needed")
    return mapping


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_ldap_urls(text: str) -> bool:
    urls = text.split()
    return bool(urls) and all(
        urlsplit(url).scheme in ("ldap", "ldaps") and bool(urlsplit(url).hostname) for url in urls
    )


def _valid_user_filter(template: str) -> bool:
    """One `{username}` placeholder inside a parenthesised filter, and no other braces."""
    rest = template.replace("{username}", "", 1)
    return (
        template.startswith("(")
        and template.endswith(")")
        and "{username}" in template
        and not ("{" in rest or "}" in rest)
    )


@dataclass(frozen=True)
class RateLimits:
    """Limits on login/verify, per client IP and per named user (Flask-Limiter strings)."""

    per_ip: tuple[str, ...] = ("60/minute", "600/hour")
    per_user: tuple[str, ...] = ("10/minute", "100/hour")
    enabled: bool = True

    @classmethod
    def parse(cls, text: str) -> RateLimits:
        """`off`, or space-separated `ip=N/unit` / `user=N/unit` items, e.g. `ip=60/minute user=10/minute`."""
        if text.strip().lower() == "off":
            return cls(per_ip=(), per_user=(), enabled=False)
        per: dict[str, list[str]] = {"ip": [], "user": []}
        for item in text.split():
            match = _LIMIT_ITEM.match(item)
            if not match:
                raise ValueError("expected `off` or items like ip=60/minute user=10/minute")
            per[match.group(1)].append(match.group(2))
        return cls(per_ip=tuple(per["ip"]), per_user=tuple(per["user"]))

    def __str__(self) -> str:
        if not self.enabled:
            return "off"
        return " ".join([f"ip={x}" for x in self.per_ip] + [f"user={x}" for x in self.per_user])


@dataclass(frozen=True)
class Settings:
    instance_dir: Path = Path("instance")
    database_url: str = ""  # empty: SQLite file in the instance dir
    public_url: str = "http://localhost:5000"
    encryption_key: str = ""  # empty: generated into <instance>/encryption.key
    # Keys that sealed secrets before the current one: still opened, never used to seal (key rotation).
    old_encryption_keys: tuple[str, ...] = ()
    jwt_audience: str = "tokenward"
    access_ttl: int = 600
    refresh_ttl: int = 2_592_000
    # database://: counters in the application database, shared by the workers (and nodes) using it.
    ratelimit_storage: str = "database://"
    rate_limits: RateLimits = field(default_factory=RateLimits)
    lockout_threshold: int = 10
    # A locked token releases itself after this long, doubled for each consecutive lock (up to the maximum).
    lockout_release: int = 300
    lockout_release_max: int = 86_400
    # `password`: a user with no factor yet may enroll one after a password alone; `invitation`: only with a
    # temporary code from an administrator.
    first_enrollment: str = "password"
    # Adding or removing a factor, or new recovery codes, need a second factor answered this recently.
    step_up_max_age: int = 600
    # The longest a temporary (lost-token) code may live.
    temporary_code_max_ttl: int = 7 * 86_400
    otp_issuer: str = "Tokenward"
    # ±1 step tolerates a phone clock a little off without doubling the guessing odds much.
    totp_window: int = 1
    # How many HOTP codes a user may have generated unseen (button pressed without logging in).
    hotp_lookahead: int = 10
    # Resync searches this far (TOTP steps either way / HOTP counters ahead) for two consecutive codes.
    resync_window: int = 1000
    # The largest clock drift (in TOTP steps) a resync may record; beyond it the token needs re-enrolling.
    max_drift_steps: int = 240
    pending_ttl: int = 600
    transaction_ttl: int = 300
    transaction_attempts: int = 5
    # Request bodies above this are refused with 413 before parsing.
    max_body_bytes: int = 65_536
    # Number of reverse proxies in front of the server whose X-Forwarded-For is trusted.
    trusted_proxies: int = 0
    # How long a node reuses its cached view of the active signing key (rotation propagates within this).
    signing_key_cache_seconds: int = 10
    webauthn_user_verification: str = "preferred"
    webauthn_attestation: str = "none"
    webauthn_aaguid_allowlist: tuple[str, ...] = ()
    webauthn_trust_anchors: str = (
        ""  # a directory or file of PEM CA certificates; empty: attestation not verified
    )
    # User directory (LDAP / Active Directory) beside the local users; no URL: local users only.
    ldap_url: str = ""  # space-separated, tried in order: the next one when one does not answer
    ldap_bind_dn: str = ""  # the service account that searches; empty: anonymous search
    ldap_bind_password_file: str = ""  # a file whose first line is the service account's password
    ldap_user_base: str = ""
    # `{username}` is replaced by the typed name, escaped (RFC 4515); `*` in its place lists everyone (sync).
    ldap_user_filter: str = "(&(objectClass=person)(uid={username}))"
    ldap_attributes: str = "username=uid id=entryUUID display_name=cn email=mail"
    ldap_ca_file: str = ""  # PEM CA certificates for ldaps:// and StartTLS; empty: the system's
    ldap_login_group: str = ""  # a group DN: only its members may sign in
    ldap_admin_group: str = ""  # a group DN: its members are administrators, everyone else a user
    # `auto`: StartTLS on ldap:// URLs except to the loopback; `always`; `never`.
    ldap_starttls: str = "auto"
    # A password over unencrypted ldap:// to another host is refused unless this is set (a trusted link only).
    ldap_allow_plain_bind: bool = False
    # Seconds to connect and to wait for each answer: a slow directory gets a 503, not a hung worker.
    ldap_timeout: int = 5
    # Argon2id cost of local passwords (default: RFC 9106's low-memory profile). A stored hash made with other
    # costs still verifies and is re-hashed with these at the user's next sign-in.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65_536
    password_hash_parallelism: int = 4
    # PostgreSQL: seconds to open a connection (or wait for a pooled one), and the longest a statement may
    # run (0: no limit); past either the request gets 503 `database_unavailable` instead of a hung thread.
    database_connect_timeout: int = 3
    database_statement_timeout: int = 10
    # Redis rate-limit storage: seconds to connect and to wait for each answer (503 past it).
    ratelimit_storage_timeout: int = 2
    # `tokenward serve`: a client has this long to send a whole request (head and body), else 408.
    client_request_timeout: int = 10

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_dir.resolve() / 'tokenward.db'}"

    @property
    def database_timeouts(self) -> DatabaseTimeouts:
        return DatabaseTimeouts(
            connect_seconds=self.database_connect_timeout, statement_seconds=self.database_statement_timeout
        )

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def rp_id(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"

    @property
    def verifies_attestation(self) -> bool:
        """New keys must prove their model: attestation asked for and checked against trust anchors."""
        return bool(self.webauthn_trust_anchors) and self.webauthn_attestation != "none"

    @property
    def public_https(self) -> bool:
        """Served over https (behind a TLS-terminating proxy, say): Secure `__Host-` cookies and HSTS."""
        return self.public_url.startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.public_https

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, default_public_url: str | None = None
    ) -> Settings:
        """The settings of the environment over those of the TOML file TOKENWARD_CONFIG names (if any).
        `default_public_url`: the public URL when neither sets one (`serve` derives it from its address)."""
        names = frozenset(f.name for f in fields(cls))
        env = merged_environment(os.environ if environ is None else environ, known=names, prefix=PREFIX)
        if default_public_url is not None and PREFIX + "PUBLIC_URL" not in env:
            env = {**env, PREFIX + "PUBLIC_URL": default_public_url}
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            if name not in env:
                continue
            try:
                values[f.name] = _convert(f.name, env[name])
            except ValueError as err:
                # The value itself is never echoed: it may be a key.
                reason = str(err) if f.name == "rate_limits" else f"not a valid {f.type}"
                raise ConfigurationError(f"{name}: {reason}") from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        self._check_database_url()
        problems = {
            "ACCESS_TTL": self.access_ttl < 30,
            "REFRESH_TTL": self.refresh_ttl < self.access_ttl,
            "LOCKOUT_THRESHOLD": self.lockout_threshold < 1,
            "LOCKOUT_RELEASE": self.lockout_release < 1,
            "LOCKOUT_RELEASE_MAX": self.lockout_release_max < self.lockout_release,
            "FIRST_ENROLLMENT": self.first_enrollment not in ("password", "invitation"),
            "STEP_UP_MAX_AGE": self.step_up_max_age < 30,
            "TEMPORARY_CODE_MAX_TTL": self.temporary_code_max_ttl < 60,
            "TOTP_WINDOW": not 0 <= self.totp_window <= 10,
            "HOTP_LOOKAHEAD": not 0 <= self.hotp_lookahead <= 100,
            "MAX_DRIFT_STEPS": not 0 <= self.max_drift_steps <= self.resync_window,
            "TRANSACTION_ATTEMPTS": self.transaction_attempts < 1,
            "DATABASE_CONNECT_TIMEOUT": not 1 <= self.database_connect_timeout <= 300,
            "DATABASE_STATEMENT_TIMEOUT": not 0 <= self.database_statement_timeout <= 86_400,
            "RATELIMIT_STORAGE_TIMEOUT": not 1 <= self.ratelimit_storage_timeout <= 60,
            "CLIENT_REQUEST_TIMEOUT": not 1 <= self.client_request_timeout <= 300,
            "PUBLIC_URL": urlsplit(self.public_url).scheme not in ("http", "https"),
            # The otpauth label is `issuer:username`; a colon in the issuer would split it wrongly.
            "OTP_ISSUER": not self.otp_issuer or ":" in self.otp_issuer,
            "WEBAUTHN_USER_VERIFICATION": self.webauthn_user_verification
            not in ("required", "preferred", "discouraged"),
            "WEBAUTHN_ATTESTATION": self.webauthn_attestation
            not in ("none", "indirect", "direct", "enterprise"),
            # Trust anchors can only judge an attestation the authenticator was asked to send.
            "WEBAUTHN_TRUST_ANCHORS": bool(self.webauthn_trust_anchors)
            and self.webauthn_attestation == "none",
            # An AAGUID is the key's own claim: only an attestation verified against trust anchors backs it.
            "WEBAUTHN_AAGUID_ALLOWLIST": bool(self.webauthn_aaguid_allowlist)
            and not self.verifies_attestation,
            "PASSWORD_HASH_TIME_COST": not 1 <= self.password_hash_time_cost <= 100,
            "PASSWORD_HASH_PARALLELISM": not 1 <= self.password_hash_parallelism <= 64,
            # Argon2 needs 8 KiB per lane; above 4 GiB a hash would exhaust the machine, not an attacker.
            "PASSWORD_HASH_MEMORY_KIB": not 8 * self.password_hash_parallelism
            <= self.password_hash_memory_kib
            <= 4 * 1024 * 1024,
            **self._ldap_problems(),
        }
        bad = [PREFIX + name for name, is_bad in problems.items() if is_bad]
        if bad:
            raise ConfigurationError(f"invalid value for {', '.join(bad)}")

    def _check_database_url(self) -> None:
        """A URL SQLAlchemy can open: parsed, its dialect known and its driver installed. The failure names
        the variable and at most the URL's `dialect+driver` part, never the URL (it may hold a password)."""
        if not self.database_url:
            return
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        name = PREFIX + "DATABASE_URL"
        try:
            url = make_url(self.database_url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ConfigurationError(
                f"{name}: not a database URL (dialect+driver://user:password@host:port/database)"
            ) from None
        shown = ascii(url.drivername[:DRIVER_NAME_SHOWN_MAX_CHARS])
        try:
            url.get_dialect().import_dbapi()
        except ArgumentError:  # NoSuchModuleError: no such dialect, or no such driver for it
            raise ConfigurationError(
                f"{name}: SQLAlchemy knows no database dialect or driver {shown} "
                "(sqlite:///PATH or postgresql+psycopg://…)"
            ) from None
        except ImportError as err:
            raise ConfigurationError(
                f"{name}: the driver of {shown} is not installed ({err.name or 'its module'}); "
                "PostgreSQL's is postgresql+psycopg://…"
            ) from None

    def _ldap_problems(self) -> dict[str, bool]:
        if not self.ldap_url:
            return {}
        try:
            parse_ldap_attributes(self.ldap_attributes)
            attributes_ok = True
        except ValueError:
            attributes_ok = False
        plain_to_remote = any(
            url.startswith("ldap://") and not is_loopback_url(url) for url in self.ldap_url.split()
        )
        return {
            "LDAP_URL": not _valid_ldap_urls(self.ldap_url),
            "LDAP_USER_BASE": not self.ldap_user_base,
            "LDAP_USER_FILTER": not _valid_user_filter(self.ldap_user_filter),
            "LDAP_ATTRIBUTES": not attributes_ok,
            # A service account needs its password; a password file without an account is a mistake.
            "LDAP_BIND_PASSWORD_FILE": bool(self.ldap_bind_dn) != bool(self.ldap_bind_password_file)
            or (bool(self.ldap_bind_password_file) and not Path(self.ldap_bind_password_file).is_file()),
            "LDAP_CA_FILE": bool(self.ldap_ca_file) and not Path(self.ldap_ca_file).is_file(),
            # Never a password in clear to another host unless an operator said so.
            "LDAP_STARTTLS": self.ldap_starttls not in ("auto", "always", "never")
            or (self.ldap_starttls == "never" and plain_to_remote and not self.ldap_allow_plain_bind),
            "LDAP_TIMEOUT": not 1 <= self.ldap_timeout <= 120,
        }


def _convert(name: str, raw: str) -> Any:
    kind = Settings.__dataclass_fields__[name].type
    if name == "rate_limits":
        return RateLimits.parse(raw)
    if kind == "Path":
        return Path(raw)
    if kind == "int":
        return int(raw)
    if kind == "bool":
        if raw.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
            raise ValueError(raw)
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind.startswith("tuple"):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw
