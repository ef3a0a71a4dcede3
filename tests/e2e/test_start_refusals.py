"""Configurations that must stop the real console and server at start, naming the variable."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Console

pytestmark = pytest.mark.slow


def test_an_aaguid_allow_list_without_trust_anchors_stops_the_server(console: Console) -> None:
    env = {**console.env, "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST": "cb69481e-8ff7-4039-93ec-0a2729a154a8"}
    result = console.run("serve", "--port", "0", env=env)
    assert result.returncode != 0
    assert "TOKENWARD_WEBAUTHN_AAGUID_ALLOWLIST" in result.stderr
    assert "Traceback" not in result.stderr
