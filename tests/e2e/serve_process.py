"""A real `tokenward serve` process on a free loopback port, and accounts made in it over HTTP.

Used by the end-to-end tests and the benchmarks. The server gets a fresh environment (no `TOKENWARD_*`
variable of the caller leaks in), picks its own port (`--port 0`, read back from gunicorn's log), is awaited
by polling `/healthz` with a deadline, and is stopped with SIGTERM, then SIGKILL to its process group if it
does not exit in time. Its output goes to a log file whose tail failure messages quote.

Accounts: `add_user` runs the console (`tokenward user add NAME --password-stdin`, in this process: see
tests/e2e/console_runner.py); `enroll_token` signs in
with the password (an enroll-only session), enrolls a TOTP/HOTP token and activates it, all over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyotp
import requests

from tests.e2e.console_runner import TOKENWARD, run_console

PASSWORD = "correct horse battery"
STARTUP_SECONDS = 30.0
# Argon2id at its cheapest for the suite's thousands of hashes (the production default costs about 0.2 s of
# CPU each): as `Settings` fields, and as the variables of a server or console process.
CHEAP_PASSWORD_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
    "password_hash_parallelism": 1,
}
CHEAP_PASSWORD_HASHING_ENV = {
    f"TOKENWARD_{name.upper()}": str(value) for name, value in CHEAP_PASSWORD_HASHING.items()
}
STOP_SECONDS = 10.0
HTTP_TIMEOUT_SECONDS = 10.0
_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


def server_env(
    *, instance_dir: Path, database_url: str, encryption_key: str, **settings: str
) -> dict[str, str]:
    """The environment of a server (or console) process: the caller's, minus its `TOKENWARD_*` variables,
    plus the given ones; `settings` are named like `Settings` fields (`rate_limits="off"`)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TOKENWARD_")}
    env.update(
        TOKENWARD_INSTANCE_DIR=str(instance_dir),
        TOKENWARD_DATABASE_URL=database_url,
        TOKENWARD_ENCRYPTION_KEY=encryption_key,
        **CHEAP_PASSWORD_HASHING_ENV,
    )
    env.update({f"TOKENWARD_{name.upper()}": value for name, value in settings.items()})
    return env


class ServeProcess:
    """A running `tokenward serve`; a context manager that stops it."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process, self.log_path = process, log_path
        self.base_url = ""

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        *,
        log_path: Path,
        workers: int = 2,
        startup_seconds: float = STARTUP_SECONDS,
        cwd: Path | None = None,
    ) -> ServeProcess:
        """Starts the server and returns once `/healthz` answers 200; stops it and raises on failure."""
        argv = [TOKENWARD, "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers)]
        return cls.launch(argv, env, log_path=log_path, startup_seconds=startup_seconds, cwd=cwd)

    @classmethod
    def launch(
        cls,
        argv: list[str],
        env: dict[str, str],
        *,
        log_path: Path,
        startup_seconds: float = STARTUP_SECONDS,
        cwd: Path | None = None,
    ) -> ServeProcess:
        """Any gunicorn command line bound to 127.0.0.1:0 whose app answers `/healthz` (the benchmarks'
        bare Flask app, for one)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd or log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a stuck worker can be killed with it
            )
        server = cls(process, log_path)
        try:
            server._await_health(time.monotonic() + startup_seconds)
        except BaseException:
            server.stop()
            raise
        return server

    def _await_health(self, deadline: float) -> None:
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}\n{self.log()}")
            if not self.base_url and (listening := _LISTENING.search(self.log(None))):
                self.base_url = f"http://127.0.0.1:{listening.group(1)}"
            if self.base_url and self._healthy():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not healthy in time\n{self.log()}")
            time.sleep(0.05)  # polling interval, not a wait for readiness

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url("/healthz"), timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self, tail_chars: int | None = 6000) -> str:
        """The server's output so far: the end of it (for failure messages), or all of it (None)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text if tail_chars is None else text[-tail_chars:]

    def wait_for_log(self, found: Callable[[str], bool], timeout: float = HTTP_TIMEOUT_SECONDS) -> str:
        """The whole log once `found` holds for it (gunicorn writes an access line after its response, so a
        request's line can lag its answer), or the last read of it when the deadline passes."""
        deadline = time.monotonic() + timeout
        while not found(text := self.log(None)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return text

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM (gunicorn shuts down gracefully), then SIGKILL to the whole process group."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:  # the master and any worker it left behind
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)

    @staticmethod
    def stop_all(servers: list[ServeProcess], timeout: float = STOP_SECONDS) -> None:
        """Stops several servers at once: all are told to shut down before any is waited for."""
        for server in servers:
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers:
            server.stop(timeout)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def add_user(env: dict[str, str], username: str, *, password: str = PASSWORD, admin: bool = False) -> None:
    """`tokenward user add NAME --password-stdin` on the server's database."""
    result = run_console(
        ("user", "add", username, "--password-stdin", *(["--admin"] if admin else [])),
        env=env,
        stdin=password + "\n",
    )
    if result.returncode != 0:
        raise RuntimeError(f"tokenward user add {username} failed: {result.stderr.strip()}")


def add_client(env: dict[str, str], name: str) -> tuple[str, str]:
    """`tokenward client add NAME --json`: the (client_id, client_secret) a login form authenticates with."""
    result = run_console(("client", "add", name, "--json"), env=env)
    if result.returncode != 0:
        raise RuntimeError(f"tokenward client add {name} failed: {result.stderr.strip()}")
    created = json.loads(result.stdout)
    return created["client_id"], created["client_secret"]


@dataclass
class OtpToken:
    """What a phone app holds after enrollment, and what it has used up."""

    token_id: str
    secret: str  # base32, as the server showed it
    type: str
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    next_counter: int = 0  # HOTP: the counter of the next code to show
    activated_step: int | None = None  # TOTP: the time step whose code activated the token

    def at(self, value: int) -> str:
        """The code for HOTP counter / TOTP time step `value`."""
        digest = getattr(hashlib, self.algorithm.lower())
        return pyotp.HOTP(self.secret, digits=self.digits, digest=digest).at(value)

    def next_hotp(self) -> str:
        code = self.at(self.next_counter)
        self.next_counter += 1
        return code

    def step(self, at: float) -> int:
        return int(at) // self.period


def _post(http: requests.Session, url: str, body: dict[str, Any], *, expected: int, **options: Any) -> Any:
    response = http.post(url, json=body, timeout=HTTP_TIMEOUT_SECONDS, **options)
    if response.status_code != expected:
        raise AssertionError(f"POST {url}: {response.status_code} {response.text}")
    return response.json()


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def enroll_token(
    http: requests.Session,
    base_url: str,
    username: str,
    *,
    password: str = PASSWORD,
    kind: str = "hotp",
    **options: Any,
) -> OtpToken:
    """Signs in with the password (a user without tokens gets an enroll-only session), enrolls a token and
    activates it with its first code: HOTP counter 0, or the TOTP code of the current time step."""
    session = _post(
        http, f"{base_url}/api/v1/login", {"username": username, "password": password}, expected=200
    )
    if session.get("status") != "enroll":
        raise AssertionError(f"{username} already has a token: {session}")
    created = _post(
        http,
        f"{base_url}/api/v1/tokens",
        {"type": kind, **options},
        expected=201,
        headers=bearer(session),
    )
    token = OtpToken(
        created["id"],
        created["secret"],
        kind,
        options.get("algorithm", "SHA1"),
        options.get("digits", 6),
        options.get("period", 30),
    )
    if kind == "hotp":
        code = token.next_hotp()
    else:
        token.activated_step = token.step(time.time())
        code = token.at(token.activated_step)
    _post(
        http,
        f"{base_url}/api/v1/tokens/{token.token_id}/activate",
        {"otp": code},
        expected=200,
        headers=bearer(session),
    )
    return token
