"""Soft authenticator fixtures: the `SoftAuthenticator` driven by python-fido2's own client (`Fido2Client`)
with python-fido2's `Fido2Server` as the relying party, no Flask: two independent implementations agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import RelyingParty


@pytest.fixture
def rp() -> RelyingParty:
    return RelyingParty()


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "soft-key.json"
