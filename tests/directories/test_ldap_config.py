"""The directory settings are checked at start: never a plain bind to a remote directory unless allowed, and
a usable filter, attribute map and service account. A remote directory without TLS is not used at all."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from server.config import Settings
from server.directories.ldap import LdapConfig, LdapDirectory
from server.errors import ConfigurationError, DirectoryUnavailable
from tests.directories.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, password_of

BASE_ENV = {"TOKENWARD_LDAP_USER_BASE": PEOPLE}


def _from_env(**variables: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **{f"TOKENWARD_LDAP_{k.upper()}": v for k, v in variables.items()}})


def _refused(variable: str, **variables: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _from_env(**variables)
    assert f"TOKENWARD_LDAP_{variable}" in caught.value.detail


def test_plain_binds_to_a_remote_directory_are_refused_unless_allowed() -> None:
    _refused("STARTTLS", url="ldap://ldap.example.org", starttls="never")
    _refused("STARTTLS", url="ldap://127.0.0.1:389 ldap://ldap2.example.org", starttls="never")
    allowed = _from_env(url="ldap://ldap.example.org", starttls="never", allow_plain_bind="yes")
    assert allowed.ldap_allow_plain_bind is True
    # TLS from the start, StartTLS, or the directory on this machine: fine.
    for url, starttls in (
        ("ldaps://ldap.example.org", "never"),
        ("ldap://ldap.example.org", "auto"),
        ("ldap://ldap.example.org", "always"),
        ("ldap://localhost:389", "never"),
        ("ldap://[::1]:389", "never"),
    ):
        assert _from_env(url=url, starttls=starttls).ldap_url == url


def test_bad_directory_settings_are_named() -> None:
    _refused("URL", url="http://ldap.example.org")
    _refused("URL", url="ldap://")
    _refused("USER_FILTER", url="ldaps://d", user_filter="(uid=%s)")
    _refused("USER_FILTER", url="ldaps://d", user_filter="uid={username}")
    _refused("USER_FILTER", url="ldaps://d", user_filter="(&(uid={username})(cn={0}))")
    _refused("ATTRIBUTES", url="ldaps://d", attributes="username=uid")  # no stable id
    _refused("ATTRIBUTES", url="ldaps://d", attributes="username=uid id=entryUUID colour=c")
    _refused("BIND_PASSWORD_FILE", url="ldaps://d", bind_dn="cn=tokenward,dc=example,dc=org")
    _refused("BIND_PASSWORD_FILE", url="ldaps://d", bind_dn="cn=x", bind_password_file="/nonexistent/file")
    _refused("CA_FILE", url="ldaps://d", ca_file="/nonexistent/ca.pem")
    _refused("STARTTLS", url="ldaps://d", starttls="sometimes")
    _refused("TIMEOUT", url="ldaps://d", timeout="0")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"TOKENWARD_LDAP_ALLOW_PLAIN_BIND": "perhaps"})
    assert "TOKENWARD_LDAP_ALLOW_PLAIN_BIND" in caught.value.detail
    with pytest.raises(ConfigurationError):
        Settings.from_env({"TOKENWARD_LDAP_URL": "ldaps://d"})  # no user base


def test_no_url_means_local_users_only() -> None:
    assert Settings.from_env({}).ldap_url == ""


def _outbound_address() -> str:
    """This machine's address on its default route (no packet is sent): not a loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "the test needs a non-loopback IPv4 address"
    return address


def test_a_remote_directory_without_starttls_is_never_sent_a_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """slapd without TLS on this machine's non-loopback address: StartTLS (the default for a remote
    ldap:// URL) fails, so nothing is bound and the answer is a 503, not a plain bind."""
    remote = Slapd(tmp_path / "slapd", host=_outbound_address())
    remote.start()
    try:
        config = LdapConfig(
            urls=(remote.url,),
            user_base=PEOPLE,
            user_filter="(&(objectClass=inetOrgPerson)(uid={username}))",
            attributes={"username": "uid", "id": "entryUUID"},
            bind_dn=SERVICE_DN,
            bind_password=SERVICE_PASSWORD,
            timeout_seconds=2,
        )
        with pytest.raises(DirectoryUnavailable):
            LdapDirectory(config).check_password(username="alice", password=password_of("alice"), known=None)
        assert "StartTLS" in caplog.text or "start_tls" in caplog.text.lower()
        allowed = LdapDirectory(
            LdapConfig(**{**config.__dict__, "starttls": "never", "allow_plain_bind": True})
        )
        found = allowed.check_password(username="alice", password=password_of("alice"), known=None)
        assert found is not None and found.username == "alice"
        allowed.close()
    finally:
        remote.stop()
