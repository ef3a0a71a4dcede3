"""The TOML configuration file (TOKENWARD_CONFIG / --config): every setting, lower case without the prefix;
the environment wins; unknown keys and wrong kinds fail with the file and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.serve import local_public_url
from server.config import Settings
from server.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokenward.toml"
    path.write_text(text)
    return path


def test_the_file_gives_settings_and_the_environment_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'public_url = "https://auth.example.com"\ninstance_dir = "state"\naccess_ttl = 300\n'
        'ldap_allow_plain_bind = true\nrate_limits = "off"\nwebauthn_aaguid_allowlist = []\n',
    )
    settings = Settings.from_env({"TOKENWARD_CONFIG": str(path), "TOKENWARD_ACCESS_TTL": "120"})
    assert settings.public_url == "https://auth.example.com"
    assert settings.instance_dir == tmp_path / "state"  # relative to the file, not to where one runs
    assert settings.access_ttl == 120
    assert settings.ldap_allow_plain_bind is True
    assert not settings.rate_limits.enabled


def test_a_relative_sqlite_file_is_beside_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///state/tw.db"\n')
    assert (
        Settings.from_env({"TOKENWARD_CONFIG": str(path)}).database_url == f"sqlite:///{tmp_path}/state/tw.db"
    )
    path.write_text('database_url = "sqlite:////srv/tw.db"\n')
    assert Settings.from_env({"TOKENWARD_CONFIG": str(path)}).database_url == "sqlite:////srv/tw.db"
    path.write_text('database_url = "postgresql+psycopg://db/tw"\n')
    assert Settings.from_env({"TOKENWARD_CONFIG": str(path)}).database_url == "postgresql+psycopg://db/tw"


def test_every_setting_has_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(f'{name} = "x"\n' for name in Settings.__dataclass_fields__))
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"TOKENWARD_CONFIG": str(path)})
    assert "unknown setting" not in refused.value.detail  # every name is known; the values are what fail


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("publc_url = 'http://localhost:5000'\n", "'publc_url'"),
        ("[server]\nport = 1\n", "'server'"),
        ("access_ttl = 1.5\n", "access_ttl"),
        ("access_ttl = [1]\n", "access_ttl"),
        ("access_ttl = 10\n", "TOKENWARD_ACCESS_TTL"),
        ("access_ttl = \n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_the_key_named(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"TOKENWARD_CONFIG": str(path)})
    assert named in refused.value.detail


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        Settings.from_env({"TOKENWARD_CONFIG": str(tmp_path / "absent.toml")})


def test_serve_derives_a_public_url_browsers_accept() -> None:
    assert local_public_url("127.0.0.1", 5631) == "http://localhost:5631"
    assert local_public_url("::1", 5631) == "http://localhost:5631"
    assert local_public_url("0.0.0.0", 80) == "http://localhost:80"  # noqa: S104
    assert local_public_url("auth.example.com", 8080) == "http://auth.example.com:8080"
    assert local_public_url("192.0.2.7", 8080) == "http://192.0.2.7:8080"
    assert local_public_url("2001:db8::7", 8080) == "http://[2001:db8::7]:8080"
    explicit = {"TOKENWARD_PUBLIC_URL": "https://auth.example.com"}
    assert (
        Settings.from_env(explicit, default_public_url="http://localhost:1").public_url
        == explicit["TOKENWARD_PUBLIC_URL"]
    )
    assert Settings.from_env({}, default_public_url="http://localhost:1").public_url == "http://localhost:1"
