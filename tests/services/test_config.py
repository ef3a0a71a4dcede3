"""Settings from TOKENWARD_* variables: typed, checked at start, failing with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import RateLimits, Settings
from server.errors import ConfigurationError


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.sqlalchemy_url.startswith("sqlite:///") and settings.sqlalchemy_url.endswith(
        "/tokenward.db"
    )
    assert settings.public_url == "http://localhost:5000"
    assert settings.rp_id == "localhost"
    assert (settings.access_ttl, settings.refresh_ttl, settings.lockout_threshold) == (600, 2_592_000, 10)
    assert settings.rate_limits.enabled
    timeouts = settings.database_timeouts
    assert (timeouts.connect_seconds, timeouts.statement_seconds, timeouts.answer_seconds) == (3, 10, 11.0)


def test_values_are_converted() -> None:
    settings = Settings.from_env(
        {
            "TOKENWARD_INSTANCE_DIR": "/srv/tw",
            "TOKENWARD_ACCESS_TTL": "300",
            "TOKENWARD_PUBLIC_URL": "https://auth.example.com",
            "TOKENWARD_RATE_LIMITS": "ip=5/minute user=2/second",
            "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST": "a, b",
            "TOKENWARD_WEBAUTHN_ATTESTATION": "direct",
            "TOKENWARD_WEBAUTHN_TRUST_ANCHORS": "/srv/tw/vendor-cas",
        }
    )
    assert settings.instance_dir == Path("/srv/tw")
    assert settings.access_ttl == 300
    assert settings.rp_id == "auth.example.com" and settings.secure_cookies
    assert settings.rate_limits == RateLimits(per_ip=("5/minute",), per_user=("2/second",))
    assert settings.webauthn_aaguid_allowlist == ("a", "b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKENWARD_ACCESS_TTL", "ten"),
        ("TOKENWARD_ACCESS_TTL", "5"),
        ("TOKENWARD_LOCKOUT_THRESHOLD", "0"),
        ("TOKENWARD_RATE_LIMITS", "everyone=5/minute"),
        ("TOKENWARD_PUBLIC_URL", "ftp://x"),
        ("TOKENWARD_TOTP_WINDOW", "50"),
        ("TOKENWARD_OTP_ISSUER", "Evil:Corp"),
        ("TOKENWARD_DATABASE_CONNECT_TIMEOUT", "0"),
        ("TOKENWARD_DATABASE_STATEMENT_TIMEOUT", "-1"),
        ("TOKENWARD_RATELIMIT_STORAGE_TIMEOUT", "600"),
        ("TOKENWARD_CLIENT_REQUEST_TIMEOUT", "0"),
    ],
)
def test_a_bad_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert name in caught.value.detail
    assert value not in caught.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "foo://tokenward:s3cret-pw@db/tokenward",  # no such dialect
        "postgresql+nosuchdriver://tokenward:s3cret-pw@db/tokenward",  # no such driver
        "postgresql://tokenward:s3cret-pw@db:notaport/tokenward",
        "tokenward:s3cret-pw@db/tokenward",  # no scheme at all
        "sqlite+pysqlcipher://:s3cret-pw@/tokenward.db",  # a driver SQLAlchemy knows, not installed
    ],
)
def test_a_database_url_sqlalchemy_cannot_open_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"TOKENWARD_DATABASE_URL": url})
    assert caught.value.detail.startswith("TOKENWARD_DATABASE_URL: ")
    assert "s3cret-pw" not in caught.value.detail


def test_database_urls_of_installed_drivers_pass() -> None:
    for url in (
        "sqlite:////srv/tw/tokenward.db",
        "postgresql+psycopg://tw:pw@db:5432/tw",
        "postgresql://db/tw",
    ):
        assert Settings.from_env({"TOKENWARD_DATABASE_URL": url}).sqlalchemy_url == url


@pytest.mark.parametrize(
    "attestation",
    [{}, {"TOKENWARD_WEBAUTHN_ATTESTATION": "direct"}],
    ids=["attestation-none", "no-trust-anchors"],
)
def test_an_aaguid_allow_list_without_verified_attestation_is_refused(attestation: dict[str, str]) -> None:
    """A key that is not made to prove its model could claim any AAGUID: the list would mean nothing."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(
            {"TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST": "cb69481e-8ff7-4039-93ec-0a2729a154a8", **attestation}
        )
    assert "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST" in caught.value.detail


def test_rate_limits_off() -> None:
    assert not RateLimits.parse("off").enabled
    assert str(RateLimits.parse("ip=1/minute user=2/hour")) == "ip=1/minute user=2/hour"
