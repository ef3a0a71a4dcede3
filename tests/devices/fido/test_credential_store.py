"""A state file makes the soft authenticator outlive the process: same credentials, counters and PIN."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.webauthn import ResidentKeyRequirement

from devices.fido.errors import SoftAuthenticatorStateError
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.devices.fido.relying_party import PIN, RelyingParty, counter_of, credential_of


def test_a_new_instance_on_the_same_file_is_the_same_key(rp: RelyingParty, state_file: Path) -> None:
    first = SoftAuthenticator(state_file=state_file)
    credential = credential_of(rp.register(first, resident_key=ResidentKeyRequirement.REQUIRED))
    rp.login(first, [credential])
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    again = SoftAuthenticator(state_file=state_file)
    response, _ = rp.login(again, [credential], allow=False)
    assert counter_of(response) == 2
    assert SoftAuthenticator(state_file=state_file).credentials()[0].sign_count == 2
    assert list(state_file.parent.glob(".*.tmp")) == []  # no temporary file left behind


def test_the_pin_and_its_retries_persist(state_file: Path) -> None:
    ClientPin(Ctap2(SoftAuthenticator(state_file=state_file))).set_pin(PIN)
    replugged = SoftAuthenticator(state_file=state_file)
    assert Ctap2(replugged).info.options["clientPin"] is True
    with pytest.raises(CtapError):
        ClientPin(Ctap2(replugged)).get_pin_token("wrong-pin")
    assert ClientPin(Ctap2(SoftAuthenticator(state_file=state_file))).get_pin_retries()[0] == 7


def test_a_missing_file_is_a_fresh_key(state_file: Path) -> None:
    assert SoftAuthenticator(state_file=state_file).credentials() == []
    assert not state_file.exists()  # written on the first change only


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"format": 2, "pin_hash": None, "pin_retries": 8, "credentials": []}),
        json.dumps({"format": 1, "pin_hash": None, "pin_retries": 99, "credentials": []}),
        json.dumps({"format": 1, "pin_hash": 5, "pin_retries": 8, "credentials": []}),
        json.dumps({"format": 1, "pin_hash": None, "pin_retries": 8, "credentials": [{"id": "AA"}]}),
    ],
    ids=["text", "list", "format", "retries", "pin-hash", "credential"],
)
def test_a_foreign_file_is_refused(state_file: Path, content: str) -> None:
    state_file.write_text(content)
    with pytest.raises(SoftAuthenticatorStateError):
        SoftAuthenticator(state_file=state_file)


def test_a_tampered_private_key_is_refused(rp: RelyingParty, state_file: Path) -> None:
    rp.register(SoftAuthenticator(state_file=state_file))
    data = json.loads(state_file.read_text())
    data["credentials"][0]["private_key"] = "AAAA"
    state_file.write_text(json.dumps(data))
    with pytest.raises(SoftAuthenticatorStateError):
        SoftAuthenticator(state_file=state_file)


def test_a_state_file_in_a_missing_directory_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(SoftAuthenticatorStateError, match="no such directory"):
        SoftAuthenticator(state_file=tmp_path / "missing" / "key.json")


def test_a_failed_write_stores_no_credential(rp: RelyingParty, tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    device = SoftAuthenticator(state_file=directory / "key.json")
    directory.rmdir()  # the disk went away after the key was plugged in
    with pytest.raises(SoftAuthenticatorStateError, match="cannot write"):
        rp.register(device)
    assert device.credentials() == []
