"""Settings: the one reader of `TOKENWARD_*` environment variables.

Every value is typed and checked at start; a bad variable fails with its name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.errors import ConfigurationError

PREFIX = "TOKENWARD_"
_LIMIT_ITEM = re.compile(r"^(ip|user)=(\d+\s*/\s*(second|minute|hour|day))$")


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
    # Fob time suites: accept this many time steps either side of now.
    fob_time_window: int = 1

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_dir.resolve() / 'tokenward.db'}"

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
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
        }
        bad = [PREFIX + name for name, is_bad in problems.items() if is_bad]
        if bad:
            raise ConfigurationError(f"invalid value for {', '.join(bad)}")


def _convert(name: str, raw: str) -> Any:
    kind = Settings.__dataclass_fields__[name].type
    if name == "rate_limits":
        return RateLimits.parse(raw)
    if kind == "Path":
        return Path(raw)
    if kind == "int":
        return int(raw)
    if kind.startswith("tuple"):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw
