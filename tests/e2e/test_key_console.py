"""The real `tokenward key` console: enroll the software authenticator for a user in a separate process, then
sign in over the HTTP API with the same authenticator (its state file) through python-fido2's client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin
from flask import Flask

from devices.fido.hid import list_security_keys
from devices.fido.soft_authenticator import SoftAuthenticator
from tests.accounts import PASSWORD
from tests.e2e.conftest import Console
from tests.webauthn_client import SecurityKey

pytestmark = pytest.mark.slow


def _add_alice(console: Console) -> None:
    console.ok("user", "add", "alice", "--password-stdin", stdin=f"{PASSWORD}\n")


def test_a_key_enrolled_at_the_console_signs_in_over_the_api(
    console: Console, api: Flask, tmp_path: Path
) -> None:
    # process=True: as the program a user starts, the family's other commands in process (console_runner.py)
    _add_alice(console)
    state = tmp_path / "soft-key.json"
    result = console.run(
        "key",
        "enroll",
        "--user",
        "alice",
        "--emulator",
        "--emulator-state",
        str(state),
        "--description",
        "desk",
        process=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("enrolled security key ") and result.stdout.strip().endswith(" for alice")
    assert "Touch your security key" in result.stderr

    [listed] = json.loads(console.ok("key", "list", "--user", "alice", "--json"))
    assert (listed["user"], listed["type"], listed["state"], listed["description"]) == (
        "alice",
        "webauthn",
        "active",
        "desk",
    )
    assert listed["aaguid"] == str(SoftAuthenticator().aaguid)
    assert "alice" in console.ok("key", "list")

    key = SecurityKey(api.test_client(), state_file=state)
    session = key.login("alice", PASSWORD)
    assert session["amr"] == ["hwk", "pwd", "mfa"]
    [stored] = SoftAuthenticator(state_file=state).credentials()
    assert stored.discoverable and stored.rp_id == "localhost"  # residentKey "preferred", as in a browser


def test_enroll_json_and_a_second_key(console: Console, tmp_path: Path) -> None:
    _add_alice(console)
    first = json.loads(console.ok("key", "enroll", "--user", "alice", "--emulator", "--json"))
    assert first["state"] == "active" and first["user"] == "alice" and "secret" not in first
    state = tmp_path / "second.json"
    console.ok("key", "enroll", "--user", "alice", "--emulator", "--emulator-state", str(state))
    assert len(json.loads(console.ok("key", "list", "--json"))) == 2
    again = console.fails("key", "enroll", "--user", "alice", "--emulator", "--emulator-state", str(state))
    assert again == "error: this security key is already registered"
    assert len(json.loads(console.ok("key", "list", "--json"))) == 2  # no pending token left behind


def test_a_key_with_a_pin(console: Console, tmp_path: Path) -> None:
    _add_alice(console)
    state = tmp_path / "pinned.json"
    ClientPin(Ctap2(SoftAuthenticator(state_file=state))).set_pin("1234-pin")
    args = ("key", "enroll", "--user", "alice", "--emulator", "--emulator-state", str(state))
    # a key with a PIN verifies the user (UV "preferred"), so it asks for the PIN
    assert (
        console.fails(*args)
        == "error: the security key needs its PIN: run at a terminal, or give --pin-stdin"
    )
    assert console.fails(*args, "--pin-stdin", stdin="wrong-pin\n") == "error: wrong PIN"
    console.ok(*args, "--pin-stdin", stdin="1234-pin\n")
    assert [key["state"] for key in json.loads(console.ok("key", "list", "--json"))] == ["active"]


FAILURES = [
    (("--user", "nobody", "--emulator"), "error: No such user"),
    (("--user", "alice", "--emulator-state", "x.json"), "error: --emulator-state needs --emulator"),
    (
        ("--user", "alice", "--emulator", "--device", "/dev/hidraw0"),
        "error: --device and --emulator exclude each other",
    ),
    (
        ("--user", "alice", "--emulator", "--emulator-state", "/nonexistent/dir/key.json"),
        "error: cannot keep a state file in /nonexistent/dir: no such directory",
    ),
    (
        ("--user", "alice", "--device", "/nonexistent/hidraw9"),
        "error: no security key at /nonexistent/hidraw9",
    ),
]


def test_enroll_failures_are_one_line(console: Console) -> None:
    _add_alice(console)
    for args, expected in FAILURES:
        assert console.fails("key", "enroll", *args) == expected
    assert json.loads(console.ok("key", "list", "--json")) == []


def test_no_usb_key_attached(console: Console) -> None:
    if list_security_keys():
        pytest.skip("a FIDO2 key is attached here: enrolling would wait for its touch")
    assert console.fails("key", "enroll", "--user", "alice") == (
        "error: no FIDO2 security key is attached (plug one in; if it is, see udev-rules/ for access)"
    )


def test_list_attached_and_its_options(console: Console) -> None:
    assert isinstance(json.loads(console.ok("key", "list", "--attached", "--json")), list)
    assert console.fails("key", "list", "--attached", "--user", "alice") == (
        "error: --attached and --user exclude each other"
    )
    assert console.fails("key", "list", "--user", "nobody") == "error: No such user"


def test_help_tells_the_two_key_families_apart(console: Console) -> None:
    top = console.ok("--help")
    assert "key " in top and "keys " in top
    assert "JWT signing keys" in " ".join(console.ok("key", "--help").split())
    assert "security key" in console.ok("key", "enroll", "--help")
