"""A fresh OpenLDAP server per test (tests change its people), and the app's settings pointing at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server.config import Settings
from tests.directories.slapd import ADMIN_GROUP, LOGIN_GROUP, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd
from tests.e2e.conftest import Console

# What the README shows for OpenLDAP, with AD's userAccountControl emulated (see slapd.py).
ATTRIBUTES = "username=uid id=entryUUID display_name=cn email=mail account_control=userAccountControl"


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = Slapd(tmp_path / "slapd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "ldap-bind-password"
    path.write_text(SERVICE_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def with_directory(base: Settings, *, url: str, password_file: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        ldap_url=url,
        ldap_bind_dn=SERVICE_DN,
        ldap_bind_password_file=str(password_file),
        ldap_user_base=PEOPLE,
        ldap_user_filter="(&(objectClass=inetOrgPerson)(uid={username}))",
        ldap_attributes=ATTRIBUTES,
        ldap_login_group=LOGIN_GROUP,
        ldap_admin_group=ADMIN_GROUP,
        ldap_timeout=2,
    )
    settings = dataclasses.replace(base, **{**values, **changes})
    settings.check()
    return settings


def directory_console(tmp_path: Path, database_url: str, slapd: Slapd, password_file: Path) -> Console:
    """The real `tokenward` console with the settings the README shows for OpenLDAP."""
    console = Console(tmp_path, database_url)
    console.env.update(
        {
            "TOKENWARD_LDAP_URL": slapd.url,
            "TOKENWARD_LDAP_BIND_DN": SERVICE_DN,
            "TOKENWARD_LDAP_BIND_PASSWORD_FILE": str(password_file),
            "TOKENWARD_LDAP_USER_BASE": PEOPLE,
            "TOKENWARD_LDAP_USER_FILTER": "(&(objectClass=inetOrgPerson)(uid={username}))",
            "TOKENWARD_LDAP_ATTRIBUTES": ATTRIBUTES,
            "TOKENWARD_LDAP_LOGIN_GROUP": LOGIN_GROUP,
            "TOKENWARD_LDAP_ADMIN_GROUP": ADMIN_GROUP,
            "TOKENWARD_LDAP_TIMEOUT": "2",
        }
    )
    return console


@pytest.fixture
def settings(settings: Settings, slapd: Slapd, service_password_file: Path) -> Settings:
    return with_directory(settings, url=slapd.url, password_file=service_password_file)


@pytest.fixture
def app(app: Flask) -> Iterator[Flask]:
    """The root fixture's app; its pooled directory connections are closed before slapd stops."""
    yield app
    directory = app.extensions["tokenward"].directories.external
    if directory is not None:
        directory.close()
