"""Real `tokenward serve` processes over HTTP: a resource server verifies their JWTs with nothing but the
JWKS, and a code sent at once to two processes sharing one database is accepted exactly once.

These run on the real clock (the servers are separate processes). TOTP codes are chosen so that a step
boundary cannot matter: the token is activated with the code of the current step S, and the code under test
is the one of step S+1, which the default window of ±1 step accepts from step S to step S+2, i.e. for at
least 60 s after activation.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gunicorn
import jwt
import pytest
import requests

from tests.accounts import missing_service
from tests.e2e.serve_process import (
    PASSWORD,
    ServeProcess,
    add_client,
    add_user,
    bearer,
    enroll_token,
    server_env,
)

pytestmark = pytest.mark.slow

PUBLIC_URL = "https://auth.tokenward.test"  # the JWT issuer; deliberately not the address the test calls
AUDIENCE = "billing-api"
PARALLEL_SUBMISSIONS = 24  # half to each process
CONTROL_SOCKET_SECONDS = 10.0
Nodes = tuple[ServeProcess, ServeProcess, dict[str, str]]  # two servers, and the environment of a console


def _username(prefix: str) -> str:
    """Unique, so that rows left by other tests on a shared PostgreSQL schema cannot collide."""
    return f"{prefix}-{secrets.token_hex(4)}"


def test_a_resource_server_verifies_the_jwt_with_the_jwks_alone(tmp_path: Path, database_url: str) -> None:
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        encryption_key=secrets.token_hex(32),
        public_url=PUBLIC_URL,
        jwt_audience=AUDIENCE,
        rate_limits="off",
    )
    username = _username("alice")
    add_user(env, username)
    with ServeProcess.start(env, log_path=tmp_path / "serve.log") as server, requests.Session() as http:
        phone = enroll_token(http, server.base_url, username, kind="totp")
        assert phone.activated_step is not None
        challenge = http.post(
            server.url("/api/v1/login"), json={"username": username, "password": PASSWORD}, timeout=10
        ).json()
        assert challenge["status"] == "second_factor", challenge
        verified = http.post(
            server.url("/api/v1/verify"),
            json={"transaction_id": challenge["transaction_id"], "otp": phone.at(phone.activated_step + 1)},
            timeout=10,
        )
        assert verified.status_code == 200, (verified.text, server.log())
        access_token = verified.json()["access_token"]
        me = http.get(server.url("/api/v1/me"), headers=bearer(verified.json()), timeout=10).json()

        # The resource server's side: PyJWT, the JWKS over HTTP, nothing of Tokenward's code or keys.
        jwks = jwt.PyJWKClient(server.url("/.well-known/jwks.json"), cache_keys=False)
        signing_key = jwks.get_signing_key_from_jwt(access_token)
        claims = jwt.decode(
            access_token,
            signing_key.key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=PUBLIC_URL,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
        published = requests.get(server.url("/.well-known/jwks.json"), timeout=10).json()["keys"]

    header = jwt.get_unverified_header(access_token)
    assert header["alg"] == "ES256"
    assert header["kid"] == signing_key.key_id
    assert header["kid"] in {key["kid"] for key in published}
    assert claims["preferred_username"] == username
    assert claims["sub"] == me["id"]
    assert claims["amr"] == ["otp", "pwd", "mfa"]
    assert claims["scope"] == "session"
    assert claims["exp"] - claims["iat"] == 600

    # The same checks refuse a token for another audience, and one whose claims were edited.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            access_token, signing_key.key, algorithms=["ES256"], audience="other-api", issuer=PUBLIC_URL
        )
    signed_header, _payload, signature = access_token.split(".")
    edited = base64.urlsafe_b64encode(json.dumps({**claims, "scope": "admin"}).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            f"{signed_header}.{edited}.{signature}",
            signing_key.key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=PUBLIC_URL,
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    """One database for two server processes: a new SQLite file (the servers migrate it), or the run's
    PostgreSQL schema with empty tables when TOKENWARD_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    if postgres_url is None:
        missing_service("TOKENWARD_TEST_DATABASE_URL is not set")
    return str(request.getfixturevalue("database_url"))


@pytest.fixture
def two_servers(tmp_path: Path, shared_database: str) -> Iterator[Nodes]:
    """Two `tokenward serve` processes (two workers each) on one database with one encryption key, each
    with an instance directory of its own, as two nodes would be."""
    key = secrets.token_hex(32)
    envs = [
        server_env(
            instance_dir=tmp_path / f"node-{name}",
            database_url=shared_database,
            encryption_key=key,
            rate_limits="off",
            # Every losing submission counts as a failure; the default lockout (10) would turn the later
            # ones into 403 token_locked, which is not what this test is about.
            lockout_threshold="1000",
        )
        for name in ("a", "b")
    ]
    # One after the other: the first one migrates the database and creates the signing key.
    first = ServeProcess.start(envs[0], log_path=tmp_path / "node-a.log")
    try:
        second = ServeProcess.start(envs[1], log_path=tmp_path / "node-b.log")
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second, envs[0]
    finally:
        ServeProcess.stop_all([first, second])


def _race(
    servers: tuple[ServeProcess, ServeProcess], username: str, code: str, client: tuple[str, str]
) -> list[tuple[int, str]]:
    """Sends `{username, otp}` PARALLEL_SUBMISSIONS times at once, alternating between the servers;
    returns (status, problem code or "session") of each answer."""
    start = threading.Barrier(PARALLEL_SUBMISSIONS)

    def submit(index: int) -> tuple[int, str]:
        url = servers[index % 2].url("/api/v1/verify")
        start.wait(timeout=30)
        response = requests.post(url, json={"username": username, "otp": code}, auth=client, timeout=30)
        body = response.json()
        return response.status_code, "session" if "access_token" in body else body.get("code", "")

    with ThreadPoolExecutor(max_workers=PARALLEL_SUBMISSIONS) as pool:
        return list(pool.map(submit, range(PARALLEL_SUBMISSIONS)))


def _assert_accepted_once(answers: list[tuple[int, str]], servers: tuple[ServeProcess, ...]) -> None:
    tally = Counter(answers)
    logs = "\n".join(server.log() for server in servers)
    assert tally[(200, "session")] == 1, (tally, logs)
    refused = {answer for answer in tally if answer != (200, "session")}
    assert refused <= {(401, "replayed_otp"), (401, "invalid_otp")}, (tally, logs)


def _control_socket_opens(path: Path) -> bool:
    """gunicorn opens its control socket once the workers are booting, which may be after they answer."""
    deadline = time.monotonic() + CONTROL_SOCKET_SECONDS
    while not path.is_socket() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the socket file
    return path.is_socket()


def test_a_code_is_accepted_once_by_two_processes_sharing_the_database(
    two_servers: Nodes, tmp_path: Path
) -> None:
    first, second, env = two_servers
    servers = (first, second)
    if gunicorn.version_info >= (25, 1):  # each node has a control socket of its own, not one per host user
        assert _control_socket_opens(tmp_path / "node-a" / "gunicorn.ctl")
        assert _control_socket_opens(tmp_path / "node-b" / "gunicorn.ctl")
    hotp_user, totp_user = _username("hotp"), _username("totp")
    with ThreadPoolExecutor(max_workers=2) as pool:  # two console processes at once
        list(pool.map(lambda name: add_user(env, name), (hotp_user, totp_user)))
    with requests.Session() as http:
        hotp = enroll_token(http, first.base_url, hotp_user, kind="hotp")
        totp = enroll_token(http, second.base_url, totp_user, kind="totp", algorithm="SHA256")
    assert totp.activated_step is not None

    client = add_client(env, "race-app")
    _assert_accepted_once(_race(servers, hotp_user, hotp.next_hotp(), client), servers)
    _assert_accepted_once(_race(servers, totp_user, totp.at(totp.activated_step + 1), client), servers)

    def took_their_half(log: str) -> bool:
        return log.count('"POST /api/v1/verify') >= PARALLEL_SUBMISSIONS

    for server in servers:  # both processes really took their half
        assert took_their_half(server.wait_for_log(took_their_half)), server.log()
    # The HOTP counter moved on by exactly one: the following code is still good (and the token not locked).
    follow_up = requests.post(
        second.url("/api/v1/verify"),
        json={"username": hotp_user, "otp": hotp.next_hotp()},
        auth=client,
        timeout=10,
    )
    assert follow_up.status_code == 200, follow_up.text


ADMIN_RACE_ROUNDS = 25


class _Admin:
    """An administrator with an HOTP token who signs in over HTTP when asked for a fresh session."""

    def __init__(self, http: requests.Session, server: ServeProcess, env: dict[str, str], name: str) -> None:
        self.http, self.server, self.name = http, server, name
        add_user(env, name, admin=True)
        self.phone = enroll_token(http, server.base_url, name, kind="hotp")

    def sign_in(self) -> dict[str, str]:
        challenge = self.http.post(
            self.server.url("/api/v1/login"), json={"username": self.name, "password": PASSWORD}, timeout=10
        ).json()
        session = self.http.post(
            self.server.url("/api/v1/verify"),
            json={"transaction_id": challenge["transaction_id"], "otp": self.phone.next_hotp()},
            timeout=10,
        )
        assert session.status_code == 200, session.text
        return bearer(session.json())


def test_two_admins_disabling_each_other_at_once_leave_one_enabled(two_servers: Nodes) -> None:
    """Each round: admin A (on one process) disables B while B (on the other) disables A, released together.
    One of them may win; both never do, so an enabled administrator always remains."""
    first, second, env = two_servers
    with requests.Session() as http:
        admins = (_Admin(http, first, env, _username("adm-a")), _Admin(http, second, env, _username("adm-b")))
        sessions = [admin.sign_in() for admin in admins]
        for _ in range(ADMIN_RACE_ROUNDS):
            start = threading.Barrier(2)

            def disable_the_other(
                index: int, start: threading.Barrier = start, sessions: list[dict[str, str]] = sessions
            ) -> int:
                server, other = (first, second)[index], admins[1 - index].name
                start.wait(timeout=30)
                url = server.url(f"/api/v1/admin/users/{other}/disable")
                return requests.post(url, headers=sessions[index], timeout=30).status_code

            with ThreadPoolExecutor(max_workers=2) as pool:
                statuses = list(pool.map(disable_the_other, range(2)))
            assert statuses.count(200) == 1, statuses  # 200 twice: no administrator left
            assert set(statuses) <= {200, 401, 409}, statuses  # 401: the loser's session was revoked first
            winner = statuses.index(200)
            loser = admins[1 - winner].name
            listed = http.get(first.url("/api/v1/admin/users"), headers=sessions[winner], timeout=10).json()
            enabled = {user["username"] for user in listed["users"] if user["role"] == "admin"}
            enabled -= {user["username"] for user in listed["users"] if user["disabled"]}
            assert enabled == {admins[winner].name}
            url = second.url(f"/api/v1/admin/users/{loser}/enable")
            assert http.post(url, headers=sessions[winner], timeout=10).status_code == 200
            sessions[1 - winner] = admins[1 - winner].sign_in()  # disabling revoked the loser's sessions
