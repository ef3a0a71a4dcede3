"""Configurations and databases that must stop the real console and server at start, with one line that
names the variable or the reason."""

from __future__ import annotations

import secrets
import socket
import subprocess

import pytest
from flask import Flask

from server.db import db
from tests.e2e.conftest import Console

pytestmark = pytest.mark.slow


def test_an_aaguid_allow_list_without_trust_anchors_stops_the_server(console: Console) -> None:
    env = {**console.env, "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST": "cb69481e-8ff7-4039-93ec-0a2729a154a8"}
    result = console.run("serve", "--port", "0", env=env)
    assert result.returncode != 0
    assert "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    """A loopback port nothing listens on (taken from the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_an_unreachable_database_stops_the_server_with_one_line(console: Console) -> None:
    url = f"postgresql+psycopg://tokenward:not-this-password@127.0.0.1:{_free_port()}/tokenward"
    env = {**console.env, "TOKENWARD_DATABASE_URL": url, "TOKENWARD_DATABASE_CONNECT_TIMEOUT": "2"}
    line = _one_error_line(console.run("serve", "--port", "0", env=env))
    assert line.startswith("error: the database is not reachable:")
    assert "not-this-password" not in line


def test_a_database_url_with_an_unknown_driver_stops_the_server_with_one_line(console: Console) -> None:
    url = "postgresql+nosuchdriver://tokenward:not-this-password@127.0.0.1/tokenward"
    line = _one_error_line(
        console.run("serve", "--port", "0", env={**console.env, "TOKENWARD_DATABASE_URL": url})
    )
    assert line.startswith("error: TOKENWARD_DATABASE_URL: ")
    assert "not-this-password" not in line


def test_a_database_option_the_driver_refuses_stops_the_server_with_one_line(console: Console) -> None:
    url = f"postgresql+psycopg://tokenward:not-this-password@127.0.0.1:{_free_port()}/db?connect_timeout=abc"
    line = _one_error_line(
        console.run("serve", "--port", "0", env={**console.env, "TOKENWARD_DATABASE_URL": url})
    )
    assert line.startswith("error: the database cannot be used: ")
    assert "not-this-password" not in line


def test_a_node_with_another_encryption_key_refuses_to_start(console: Console, api: Flask) -> None:
    with api.app_context():  # a signing key, sealed with the instance's key (as a first node makes it)
        rt = api.extensions["tokenward"]
        rt.keys.signing_key(db.session, now=rt.now())
        db.session.remove()
    env = {**console.env, "TOKENWARD_ENCRYPTION_KEY": secrets.token_hex(32)}
    line = _one_error_line(console.run("serve", "--port", "0", env=env))
    assert "another TOKENWARD_ENCRYPTION_KEY" in line
