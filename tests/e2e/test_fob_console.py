"""The real `tokenward fob` console with an emulated fob on a real pseudo-terminal.

`tokenward fob emulate` runs as a background process; provision, respond, list and wipe are separate
processes on the test's database; the login goes through the API of an app on the same database and
instance directory, and its JWT is checked with PyJWT against the JWKS. Faults (an unplugged cable, power
lost mid-PROVISION, garbled replies) are injected into an in-process emulator the console processes talk to.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from devices.fob.emulator import FobEmulator
from devices.fob.protocol import ProvisionRequest
from tests.e2e.conftest import Console
from tests.e2e.serve_process import TOKENWARD

pytestmark = pytest.mark.slow

PORT_DEADLINE_SECONDS = 30


@pytest.fixture
def emulate(console: Console, tmp_path: Path) -> Iterator[str]:
    """`tokenward fob emulate` in the background; yields the port it printed, then stops it with SIGTERM."""
    command = [TOKENWARD, "fob", "emulate", "--serial", "TWE2E01", "--state", str(tmp_path / "fob.json")]
    with subprocess.Popen(
        command, cwd=console.cwd, env=console.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        try:
            ready, _, _ = select.select([process.stdout], [], [], PORT_DEADLINE_SECONDS)
            assert ready, "fob emulate printed no port"
            port = process.stdout.readline().strip()
            assert port.startswith("/dev/"), port
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=PORT_DEADLINE_SECONDS) == 0, process.stderr.read()


def _session_claims(client: FlaskClient, access_token: str) -> dict[str, Any]:
    """Verifies the access token as a resource server would: PyJWT with the published JWKS."""
    keys = client.get("/.well-known/jwks.json").json
    assert keys is not None
    kid = jwt.get_unverified_header(access_token)["kid"]
    jwk = next(key for key in keys["keys"] if key["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        access_token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience="tokenward",
        issuer="http://localhost:5000",
    )
    return claims


def test_provision_then_login_with_the_fobs_answer(
    console: Console,
    api: Flask,
    emulate: str,
    tmp_path: Path,
) -> None:
    # process=True: as the program a user starts, the family's other commands in process (console_runner.py)
    console.ok("user", "add", "alice", "--password-stdin", stdin="correct horse battery\n")
    provisioned = json.loads(
        console.ok("fob", "provision", "--port", emulate, "--user", "alice", "--json", process=True)
    )
    assert provisioned["serial"] == "TWE2E01" and provisioned["user"] == "alice"
    assert provisioned["suite"] == "OCRA-1:HOTP-SHA1-6:QN08" and "secret" not in provisioned

    client = api.test_client()
    login = client.post("/api/v1/login", json={"username": "alice", "password": "correct horse battery"}).json
    assert login is not None and login["methods"] == ["fob"]
    response = console.ok(
        "fob", "respond", "--port", emulate, login["fob"]["challenge"], process=True
    ).strip()
    assert response.isdigit() and len(response) == 6
    body = {"transaction_id": login["transaction_id"], "fob_response": response}
    accepted = client.post("/api/v1/verify", json=body)
    assert accepted.status_code == 200, accepted.json
    claims = _session_claims(client, accepted.json["access_token"])
    assert claims["preferred_username"] == "alice" and "hwk" in claims["amr"]
    again = client.post("/api/v1/verify", json=body)
    assert again.status_code == 401

    # the fob is provisioned now: a second provision is refused before anything is written
    refused = console.fails("fob", "provision", "--port", emulate, "--user", "alice")
    assert refused == (
        "error: fob TWE2E01 is already provisioned; wipe it with "
        f"`tokenward fob wipe --port {emulate} --yes`, then provision it again"
    )
    (tmp_path / "udev").mkdir()
    (tmp_path / "udev" / "fob-TWE2E01").symlink_to(emulate)
    listed = json.loads(console.ok("fob", "list", "--dir", str(tmp_path / "udev"), "--json"))
    assert [(fob["serial"], fob["state"], fob["user"]) for fob in listed] == [
        ("TWE2E01", "provisioned", "alice")
    ]

    assert console.fails("fob", "wipe", "--port", emulate, process=True) == (
        "error: wiping erases the fob's secret for good; add --yes to do it"
    )
    wiped = console.ok("fob", "wipe", "--port", emulate, "--yes")
    assert wiped.startswith("wiped fob TWE2E01; its token ") and wiped.strip().endswith("was disabled")
    assert [view["state"] for view in json.loads(console.ok("token", "list", "--json"))] == ["disabled"]
    assert console.fails("fob", "respond", "--port", emulate, "12345678").startswith(
        "error: the fob is blank"
    )


class UnpluggedAfterProvision(FobEmulator):
    """Committed the PROVISION, answered OK, then the cable was pulled before the next command."""

    def _provision(self, request: ProvisionRequest) -> None:
        super()._provision(request)
        self.faults.disconnect_on_command = True


def _no_tokens(console: Console) -> bool:
    return json.loads(console.ok("token", "list", "--json")) == []


def test_unplugged_after_provision_stores_nothing_and_says_the_fob_holds_a_secret(
    console: Console,
    tmp_path: Path,
) -> None:
    console.ok("user", "add", "alice", "--no-password")
    with UnpluggedAfterProvision(tmp_path / "fob.json", serial="TWUNPLUG") as emulator:
        port = emulator.port
        message = console.fails("fob", "provision", "--port", port, "--user", "alice")
        assert emulator.wait(timeout_seconds=5)
    assert message.startswith(f"error: fob port {port} failed: unplugged or closed")
    assert message.endswith(
        "no token was stored and the fob holds a secret that no token uses: "
        f"wipe it with `tokenward fob wipe --port {port} --yes`"
    )
    assert _no_tokens(console)

    # plugged in again: it is provisioned as the message said; wipe it as told, then provisioning works
    with FobEmulator(tmp_path / "fob.json") as replugged:
        assert replugged.state.secret is not None
        console.ok("fob", "wipe", "--port", replugged.port, "--yes")
        console.ok("fob", "provision", "--port", replugged.port, "--user", "alice")
    assert [view["serial"] for view in json.loads(console.ok("token", "list", "--json"))] == ["TWUNPLUG"]


def test_power_lost_during_provision_says_the_fob_may_hold_a_secret(
    console: Console,
    tmp_path: Path,
) -> None:
    console.ok("user", "add", "alice", "--no-password")
    with FobEmulator(tmp_path / "fob.json", serial="TWPOWER") as emulator:
        emulator.faults.power_loss_on_provision = True
        message = console.fails("fob", "provision", "--port", emulator.port, "--user", "alice")
    assert "no token was stored and the fob may hold a secret that no token uses: wipe it with" in message
    assert _no_tokens(console)
    with FobEmulator(tmp_path / "fob.json") as replugged:
        assert replugged.state.secret is None  # the PROVISION never reached its flash


def test_a_garbled_reply_is_retried_and_garbage_only_is_a_clean_error(
    console: Console,
    tmp_path: Path,
) -> None:
    console.ok("user", "add", "alice", "--no-password")
    with FobEmulator(tmp_path / "fob.json", serial="TWNOISE") as emulator:
        emulator.faults.corrupt_replies = 100
        message = console.fails("fob", "provision", "--port", emulator.port, "--user", "alice")
        assert message.endswith("; nothing was written to the fob"), message
        assert emulator.state.secret is None and _no_tokens(console)

        emulator.faults.corrupt_replies = 1
        emulator.faults.noise = b"\x00garbage<<\n"
        started = time.monotonic()
        console.ok("fob", "provision", "--port", emulator.port, "--user", "alice")
        assert time.monotonic() - started < 60
        assert emulator.state.secret is not None
    assert [view["serial"] for view in json.loads(console.ok("token", "list", "--json"))] == ["TWNOISE"]
