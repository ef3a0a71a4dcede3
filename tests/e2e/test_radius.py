"""A real `tokenward radius serve` process asked by clients nobody here wrote: FreeRADIUS's `radclient` and
`radtest`, and PAM's `pam_radius_auth` driven by `pamtester` as sshd would drive it.

Accounts are made in-process on the console's instance (a user, a known HOTP seed, the NAS as a client); the
console's own `radius client` commands are tested at the end; the emulated fob answers with
`tokenward fob respond`. A missing client program fails these tests.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from sqlalchemy import create_engine, text

from server.config import Settings
from server.migrations import upgrade_schema
from server.radius.server import build_runtime
from server.services.audit import Actor
from server.services.radius_clients import add_radius_client
from server.services.seed_import import import_seed_file
from server.services.users import create_user
from tests.accounts import everything_stored
from tests.e2e.conftest import Console
from tests.e2e.serve_process import TOKENWARD
from tests.e2e.test_fob_console import emulate  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
SECRET = "radius-test-secret-0123"
SEED_HEX = "3132333435363738393031323334353637383930"  # RFC 4226's test key
STARTUP_SECONDS = 30.0
# How long a request the server should drop is given: it answers others on loopback in milliseconds, and the
# audit log shows each drop with its reason, so a slow answer cannot pass for a drop.
DROPPED_WAIT_SECONDS = 2
_LISTENING = re.compile(r"RADIUS on udp 127\.0\.0\.1:(\d+)")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (apt-get install freeradius-utils pamtester libpam-radius-auth)"
    return path


def hotp(counter: int) -> str:
    return pyotp.HOTP(base64.b32encode(bytes.fromhex(SEED_HEX)).decode()).at(counter)


@dataclass
class Radius:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def ask(
        self, attributes: str, *, secret: str = SECRET, retries: int = 3, wait_seconds: int = 5
    ) -> subprocess.CompletedProcess[str]:
        """One Access-Request with radclient (which retransmits the very packet after `wait_seconds`)."""
        return subprocess.run(
            [
                _tool("radclient"),
                "-x",
                "-r",
                str(retries),
                "-t",
                str(wait_seconds),
                f"127.0.0.1:{self.port}",
                "auth",
                secret,
            ],
            input=attributes,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ask_dropped(self, attributes: str, *, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
        """A request the server should drop: sent once, and waited for DROPPED_WAIT_SECONDS."""
        return self.ask(attributes, secret=secret, retries=1, wait_seconds=DROPPED_WAIT_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def pap(password: str, *, state: str | None = None) -> str:
    extra = f", State = 0x{state}" if state else ""
    return f'User-Name = alice, User-Password = "{password}", Message-Authenticator = 0x00{extra}\n'


def received(result: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"Received (Access-\w+)", result.stdout)
    return found.group(1) if found else "nothing"


def state_of(result: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"State = 0x([0-9a-f]+)", result.stdout)
    assert found, result.stdout
    return found.group(1)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_radius(console: Console, tmp_path: Path, *options: str, **settings: str) -> Radius:
    log_path = tmp_path / "radius.log"
    port = _free_udp_port()
    env = {**console.env, **{f"TOKENWARD_{name.upper()}": value for name, value in settings.items()}}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TOKENWARD, "radius", "serve", "--listen", f"127.0.0.1:{port}", *options],
            cwd=console.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _LISTENING.search(log_path.read_text(errors="replace")):
        assert process.poll() is None, log_path.read_text()
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(log_path.read_text())
        time.sleep(0.05)  # polling for the startup line, not a wait for readiness
    return Radius(port, process, log_path)


def stop_radius(radius: Radius) -> None:
    radius.process.send_signal(signal.SIGTERM)
    try:
        radius.process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(radius.process.pid, signal.SIGKILL)
        radius.process.wait(5)
    assert "Traceback" not in radius.log_path.read_text(errors="replace"), radius.log()


def _accounts(console: Console, *, client: str | None = "vpn", **client_options: Any) -> None:
    """alice with a known HOTP seed, and the NAS as a RADIUS client (`client`, unless None), made in-process
    on the console's instance: three console starts fewer per test (`user add`, `token import` and
    `radius client add` have tests of their own)."""
    rt, sessions = build_runtime(Settings.from_env(console.env))
    session = sessions()
    try:
        upgrade_schema(session.get_bind())  # type: ignore[arg-type]
        create_user(session, rt, username="alice", password=PASSWORD, actor=Actor.console())
        seed = f"RAD1, {SEED_HEX}, hotp\n".encode()
        import_seed_file(session, rt, data=seed, source="seed.csv", username="alice", actor=Actor.console())
        if client is not None:
            client_options.setdefault("address", "127.0.0.1/32")
            add_radius_client(
                session, rt, name=client, secret=SECRET, actor=Actor.console(), **client_options
            )
    finally:
        session.close()
        session.get_bind().dispose()  # type: ignore[union-attr]


@pytest.fixture
def radius(console: Console, tmp_path: Path) -> Iterator[Radius]:
    _accounts(console)
    server = start_radius(console, tmp_path)
    try:
        yield server
    finally:
        stop_radius(server)


def audit(console: Console, action: str) -> list[tuple[str, str, str, str]]:
    """The audit events of `action` (actor, client IP, target, reason), read from the test's database."""
    engine = create_engine(console.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT actor, client_ip, target, reason FROM audit_events"
                    " WHERE action = :action ORDER BY id"
                ),
                {"action": action},
            ).all()
    finally:
        engine.dispose()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def test_password_and_code_in_one_round_then_the_replay_is_rejected(radius: Radius, console: Console) -> None:
    accepted = radius.ask(pap(PASSWORD + hotp(1)))
    assert received(accepted) == "Access-Accept", accepted.stdout + radius.log()
    assert "Message-Authenticator" in accepted.stdout
    assert "Class = 0x" in accepted.stdout
    replayed = radius.ask(pap(PASSWORD + hotp(1)))
    assert received(replayed) == "Access-Reject"
    assert audit(console, "radius.accept") == [("radius:vpn", "127.0.0.1", "alice", "")]
    assert [row[3] for row in audit(console, "radius.reject")] == ["replayed_otp"]


def test_password_then_challenge_then_the_code(radius: Radius) -> None:
    challenged = radius.ask(pap(PASSWORD))
    assert received(challenged) == "Access-Challenge", challenged.stdout
    assert 'Reply-Message = "Enter the code from your authenticator"' in challenged.stdout
    state = state_of(challenged)
    wrong = radius.ask(pap("000000", state=state))
    assert received(wrong) == "Access-Reject"
    # the challenge has attempts left after a wrong answer
    accepted = radius.ask(pap(hotp(1), state=state))
    assert received(accepted) == "Access-Accept", accepted.stdout
    again = radius.ask(pap(hotp(2), state=state))
    assert received(again) == "Access-Reject"  # a transaction is single use


def test_radtest_gets_the_challenge(radius: Radius) -> None:
    result = subprocess.run(
        [_tool("radtest"), "-x", "alice", PASSWORD, f"127.0.0.1:{radius.port}", "0", SECRET],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Received Access-Challenge" in result.stdout, result.stdout + radius.log()


def test_wrong_secret_unknown_address_and_unsigned_requests_are_dropped_and_audited(
    radius: Radius, console: Console
) -> None:
    with ThreadPoolExecutor(2) as both:  # side by side: each waits DROPPED_WAIT_SECONDS for no answer
        wrong_secret = both.submit(
            radius.ask_dropped, pap(PASSWORD + hotp(1)), secret="not-the-secret-at-all"
        )
        unsigned = both.submit(
            radius.ask_dropped, f'User-Name = alice, User-Password = "{PASSWORD}{hotp(1)}"\n'
        )
    assert received(wrong_secret.result()) == "nothing"
    assert received(unsigned.result()) == "nothing"
    console.ok("radius", "client", "remove", "vpn")
    console.ok(
        "radius",
        "client",
        "add",
        "elsewhere",
        "--address",
        "192.0.2.0/24",
        "--secret-stdin",
        stdin=SECRET + "\n",
    )
    unknown = radius.ask_dropped(pap(PASSWORD + hotp(1)))
    assert received(unknown) == "nothing"
    dropped = {(row[1], row[3]) for row in audit(console, "radius.dropped")}
    assert dropped == {
        ("127.0.0.1", "bad_message_authenticator"),
        ("127.0.0.1", "no_message_authenticator"),
        ("127.0.0.1", "unknown_client"),
    }
    assert audit(console, "verify.otp") == []  # nothing reached a user


def test_a_locked_token_is_rejected_even_with_the_right_code(radius: Radius, console: Console) -> None:
    for _ in range(10):  # TOKENWARD_LOCKOUT_THRESHOLD's default
        assert received(radius.ask(pap(PASSWORD + "000000"))) == "Access-Reject"
    locked = radius.ask(pap(PASSWORD + hotp(1)))
    assert received(locked) == "Access-Reject"
    assert audit(console, "radius.reject")[-1][3] == "token_locked"


def test_a_recovery_code_answers_the_challenge(radius: Radius, console: Console, api: object) -> None:
    from flask import Flask

    from server.db import db
    from server.services.audit import Actor
    from server.services.recovery_codes import create_recovery_codes
    from server.services.users import get_user

    assert isinstance(api, Flask)
    with api.app_context():
        user = get_user(db.session, username="alice")
        codes = create_recovery_codes(
            db.session, api.extensions["tokenward"], user=user, actor=Actor.console()
        )
    challenged = radius.ask(pap(PASSWORD))
    assert "or a recovery code" in challenged.stdout, challenged.stdout
    accepted = radius.ask(pap(codes[0], state=state_of(challenged)))
    assert received(accepted) == "Access-Accept", accepted.stdout + radius.log()
    assert (
        "recovery_code"
        in bytes.fromhex(re.search(r"Class = 0x([0-9a-f]+)", accepted.stdout).group(1)).decode()
    )


def test_a_fob_challenge_answered_with_the_fob(radius: Radius, console: Console, emulate: str) -> None:  # noqa: F811
    console.ok("user", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    console.ok("fob", "provision", "--port", emulate, "--user", "bob", "--json")
    challenged = radius.ask(pap(PASSWORD).replace("alice", "bob"))
    assert received(challenged) == "Access-Challenge", challenged.stdout + radius.log()
    shown = re.search(r"challenge (\d{8})", challenged.stdout)
    assert shown, challenged.stdout
    response = console.ok("fob", "respond", "--port", emulate, shown.group(1)).strip()
    accepted = radius.ask(pap(response, state=state_of(challenged)).replace("alice", "bob"))
    assert received(accepted) == "Access-Accept", accepted.stdout + radius.log()


def test_a_temporary_code_answers_the_challenge(radius: Radius, console: Console) -> None:
    issued = json.loads(console.ok("user", "temp-code", "alice", "--json"))
    challenged = radius.ask(pap(PASSWORD))
    assert "your temporary code" in challenged.stdout, challenged.stdout
    accepted = radius.ask(pap(issued["code"], state=state_of(challenged)))
    assert received(accepted) == "Access-Accept", accepted.stdout + radius.log()
    again = radius.ask(pap(PASSWORD))
    assert "temporary code" not in again.stdout  # single use


def test_a_code_only_client_sends_the_code_alone(console: Console, tmp_path: Path) -> None:
    _accounts(console, client=None)
    console.ok(  # the console's --code-only, as an administrator sets it
        "radius",
        "client",
        "add",
        "fw",
        "--address",
        "127.0.0.0/8",
        "--code-only",
        "--secret-stdin",
        stdin=SECRET + "\n",
    )
    server = start_radius(console, tmp_path)
    try:
        assert received(server.ask(pap(hotp(1)))) == "Access-Accept"
        assert received(server.ask(pap(PASSWORD + hotp(2)))) == "Access-Reject"
        assert received(server.ask(pap(hotp(1)))) == "Access-Reject"  # used
    finally:
        stop_radius(server)
    assert [row[0] for row in audit(console, "radius.accept")] == ["radius:fw"]


def test_the_per_user_rate_limit_holds_for_radius(console: Console, tmp_path: Path) -> None:
    _accounts(console)
    server = start_radius(console, tmp_path, rate_limits="user=2/minute")
    try:
        assert received(server.ask(pap(PASSWORD + "000000"))) == "Access-Reject"
        assert received(server.ask(pap(PASSWORD + "000000"))) == "Access-Reject"
        limited = server.ask(pap(PASSWORD + hotp(1)))
        assert received(limited) == "Access-Reject"
    finally:
        stop_radius(server)
    assert audit(console, "radius.reject")[-1][3] == "rate_limited"
    assert [row[2] for row in audit(console, "ratelimit.refused")] == ["user alice from 127.0.0.1: 1 refused"]


def test_metrics_add_up_every_workers_answers(console: Console, tmp_path: Path) -> None:
    _accounts(console)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    server = start_radius(console, tmp_path, "--metrics", f"127.0.0.1:{metrics_port}")
    try:
        assert received(server.ask(pap(PASSWORD + hotp(1)))) == "Access-Accept"
        assert received(server.ask(pap(PASSWORD + "000000"))) == "Access-Reject"
        assert (
            received(server.ask_dropped(pap(PASSWORD + hotp(2)), secret="a-wrong-secret-for-sure"))
            == "nothing"
        )
        exposition = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    finally:
        stop_radius(server)
    assert 'tokenward_radius_answers_total{reason="",result="accept"} 1.0' in exposition
    assert 'tokenward_radius_answers_total{reason="invalid_otp",result="reject"} 1.0' in exposition
    assert 'tokenward_radius_dropped_total{reason="bad_message_authenticator"} 1.0' in exposition


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _workers(radius: Radius) -> set[int]:
    """The fork server's children (the fork server and multiprocessing's resource tracker are the main
    process's)."""
    return {worker for child in _children(radius.process.pid) for worker in _children(child)}


def test_a_worker_that_dies_is_started_again(radius: Radius) -> None:
    workers = sorted(_workers(radius))
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + STARTUP_SECONDS
    while "starting another" not in radius.log() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the log for the restart, not a wait for it
    assert f"RADIUS worker {workers[0]} exited with -9; starting another" in radius.log()
    assert len(_workers(radius) - {workers[0]}) == 2
    for counter in (1, 2):  # whichever worker the kernel picks answers
        assert received(radius.ask(pap(PASSWORD + hotp(counter)))) == "Access-Accept", radius.log()


PAM_SERVICE = """auth required {module} conf={conf} debug
account required pam_permit.so
"""


def test_pam_login_as_sshd_does_it_answers_the_challenge_prompt(
    radius: Radius, console: Console, tmp_path: Path
) -> None:
    """pam_radius_auth sends the password, shows the Access-Challenge's Reply-Message as a prompt and sends
    what the user types with the State: pamtester reads both answers from stdin."""
    _tool("pamtester")
    module = next(
        (str(path) for path in Path("/").glob("lib*/**/security/pam_radius_auth.so")), "pam_radius_auth.so"
    )
    # Debian 12's pam_radius_auth (2.0.0) predates BlastRADIUS and sends no Message-Authenticator.
    console.ok("radius", "client", "remove", "vpn")
    console.ok(
        "radius",
        "client",
        "add",
        "sshd",
        "--address",
        "127.0.0.1/32",
        "--legacy-unsigned-requests",
        "--secret-stdin",
        stdin=SECRET + "\n",
    )
    conf = tmp_path / "pam_radius_auth.conf"
    conf.write_text(f"127.0.0.1:{radius.port} {SECRET} 5\n")
    conf.chmod(0o600)
    service = f"tokenward-test-{uuid.uuid4().hex[:12]}"
    service_file = Path("/etc/pam.d") / service
    service_file.write_text(PAM_SERVICE.format(module=module, conf=conf))
    try:
        ok = subprocess.run(
            [_tool("pamtester"), "-v", service, "alice", "authenticate"],
            input=f"{PASSWORD}\n{hotp(1)}\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        refused = subprocess.run(
            [_tool("pamtester"), "-v", service, "alice", "authenticate"],
            input=f"{PASSWORD}\n{hotp(1)}\n",  # the same code again
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        service_file.unlink()
    assert ok.returncode == 0, ok.stdout + ok.stderr + radius.log()
    assert "Enter the code from your authenticator" in ok.stdout + ok.stderr
    assert "successfully authenticated" in ok.stdout + ok.stderr
    assert refused.returncode != 0, refused.stdout + refused.stderr


def test_client_console_lists_and_generates_secrets(console: Console) -> None:
    # process=True: as the program a user starts, the family's other commands in process (console_runner.py)
    added = console.run("radius", "client", "add", "fw", "--address", "10.0.0.0/8", "--json", process=True)
    created = json.loads(added.stdout)
    assert len(created["secret"]) >= 32 and created["address"] == "10.0.0.0/8"
    assert created["secret"] not in added.stderr  # shown once on stdout; the log (stderr) never holds it
    listed = json.loads(console.ok("radius", "client", "list", "--json"))
    assert [(view["name"], view["address"]) for view in listed] == [("fw", "10.0.0.0/8")]
    assert "secret" not in listed[0]
    assert created["secret"] not in console.ok("radius", "client", "list")
    assert created["secret"] not in everything_stored(console.database_url)  # sealed, in no audit event
    assert console.fails(
        "radius", "client", "add", "fw2", "--address", "10.0.0.1/8", process=True
    ).startswith("error: address")
    typed = SECRET + "-typed-" + uuid.uuid4().hex  # --secret-stdin: the admin's own, never printed back
    given = console.run(
        "radius", "client", "add", "vpn2", "--address", "10.2.0.0/16", "--secret-stdin", stdin=typed + "\n"
    )
    assert given.returncode == 0, given.stderr
    assert typed not in given.stdout + given.stderr and typed not in everything_stored(console.database_url)
    # Tokenward would see a code alone from it, single-factor: every request refused (a red-team run's find).
    assert console.fails(
        "radius", "client", "add", "nas", "--address", "10.1.0.0/16", "--code-only", "--require", "mfa"
    ).startswith("error: require: a code-only NAS checks the password itself")
    console.ok("radius", "client", "remove", "fw")
    console.ok("radius", "client", "remove", "vpn2")
    assert json.loads(console.ok("radius", "client", "list", "--json")) == []
