"""USB security keys through python-fido2 (none in CI: typed errors), and the soft key's state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.fido import hid
from devices.fido.errors import NoSecurityKey, SecurityKeyUnavailable
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import RelyingParty, credential_of


def test_a_soft_key_outlives_its_object_in_its_state_file(rp: RelyingParty, state_file: Path) -> None:
    credential = credential_of(rp.register(SoftAuthenticator(state_file=state_file)))
    rp.login(SoftAuthenticator(state_file=state_file), [credential])


def test_a_missing_hid_path(tmp_path: Path) -> None:
    with pytest.raises((NoSecurityKey, SecurityKeyUnavailable)):
        hid.open_security_key(str(tmp_path / "hidraw99"))


def test_no_key_attached_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hid, "list_descriptors", lambda: [])
    assert hid.list_security_keys() == []
    with pytest.raises(NoSecurityKey, match="no FIDO2 security key is attached"):
        hid.open_security_key()
