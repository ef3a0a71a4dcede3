"""Opening "an authenticator" by location: the soft authenticator, or USB keys (none in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.fido import hid
from devices.fido.errors import NoSecurityKey, SecurityKeyUnavailable
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import RelyingParty, credential_of


def test_soft_locations(rp: RelyingParty, state_file: Path) -> None:
    assert isinstance(hid.open_authenticator("soft:"), SoftAuthenticator)
    first = hid.open_authenticator(f"soft:{state_file}")
    credential = credential_of(rp.register(first))
    rp.login(hid.open_authenticator(f"soft:{state_file}"), [credential])


def test_an_unknown_location() -> None:
    with pytest.raises(ValueError, match="not an authenticator location"):
        hid.open_authenticator("usb:0")


def test_a_missing_hid_path(tmp_path: Path) -> None:
    with pytest.raises((NoSecurityKey, SecurityKeyUnavailable)):
        hid.open_authenticator(f"hid:{tmp_path / 'hidraw99'}")


def test_no_key_attached_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hid, "list_descriptors", lambda: [])
    assert hid.list_security_keys() == []
    with pytest.raises(NoSecurityKey, match="no FIDO2 security key is attached"):
        hid.open_security_key()
