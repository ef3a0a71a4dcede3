"""Races between real `tokenward serve` nodes sharing one database: logout against refresh (no session
survives its logout), parallel wrong guesses against one token (no more are evaluated than the lockout
threshold allows), and parallel submissions of one recovery or temporary code (exactly one signs in).

Sessions for the races come from a registered client's one-step verify with successive HOTP codes (no
password hash per session), so a hundred of them cost little.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.accounts import missing_service, own_postgres_schema
from tests.e2e.cluster import Cluster, at_once, post, running_cluster
from tests.e2e.serve_process import PASSWORD, OtpToken, add_user, bearer, enroll_token

pytestmark = pytest.mark.slow

RACES = 100
RACES_AT_ONCE = 10
GUESSES = 40
THRESHOLD = 5
SUBMISSIONS = 20


@pytest.fixture(scope="module")
def postgresql(postgres_url: str | None) -> Iterator[str]:
    """A PostgreSQL schema of this module's own (the servers migrate it): one cluster serves the module's
    tests, which make users of their own, while other tests on the same worker empty the run's schema."""
    if postgres_url is None:
        missing_service("TOKENWARD_TEST_DATABASE_URL is not set")
    with own_postgres_schema(os.environ["TOKENWARD_TEST_DATABASE_URL"], "tw_races") as url:
        yield url


@pytest.fixture(scope="module")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory, postgresql: str) -> Iterator[Cluster]:
    tmp_path = tmp_path_factory.mktemp("postgres-cluster")
    with running_cluster(tmp_path, postgresql, lockout_threshold=str(THRESHOLD)) as cluster:
        yield cluster


@pytest.fixture
def sqlite_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}") as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgres"])
def any_cluster(request: pytest.FixtureRequest) -> Cluster:
    return request.getfixturevalue(f"{request.param}_cluster")  # type: ignore[no-any-return]


def _username(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _client_auth(cluster: Cluster, name: str) -> tuple[str, str]:
    created = cluster.console_json("client", "add", name)
    return created["client_id"], created["client_secret"]


def _hotp_user(cluster: Cluster, http: requests.Session) -> tuple[str, OtpToken]:
    username = _username("user")
    add_user(cluster.env, username)
    return username, enroll_token(http, cluster.node(0).base_url, username, kind="hotp")


def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def test_no_session_survives_its_logout_racing_a_refresh(postgres_cluster: Cluster) -> None:
    cluster = postgres_cluster
    auth = _client_auth(cluster, "races")
    with requests.Session() as http:
        username, hotp = _hotp_user(cluster, http)
        sessions = []
        for index in range(RACES):
            answer = http.post(
                cluster.node(index).url("/api/v1/verify"),
                json={"username": username, "otp": hotp.next_hotp()},
                auth=auth,
                timeout=30,
            )
            assert answer.status_code == 200, (answer.text, cluster.logs())
            sessions.append(answer.json())

    outcomes: list[tuple[int, int, dict[str, Any] | None]] = []
    for first in range(0, RACES, RACES_AT_ONCE):
        batch = sessions[first : first + RACES_AT_ONCE]
        calls: list[Callable[[], requests.Response]] = []
        for offset, session in enumerate(batch):
            index = first + offset
            calls.append(
                partial(post, cluster.node(index).url("/api/v1/logout"), {}, headers=bearer(session))
            )
            calls.append(
                partial(
                    post,
                    cluster.node(index + 1).url("/api/v1/token/refresh"),
                    {"refresh_token": session["refresh_token"]},
                    auth=auth,  # the sessions are the client's: it refreshes them
                )
            )
        answers = at_once(calls)
        for offset in range(len(batch)):
            logout, refresh = answers[2 * offset], answers[2 * offset + 1]
            minted = refresh.json() if refresh.status_code == 200 else None
            outcomes.append((logout.status_code, refresh.status_code, minted))

    assert [logout for logout, _, _ in outcomes] == [204] * RACES, cluster.logs()
    assert {refresh for _, refresh, _ in outcomes} <= {200, 401}
    candidates = [
        (index, candidate is minted, candidate)
        for index, (session, (_, _, minted)) in enumerate(zip(sessions, outcomes, strict=True))
        for candidate in (session, minted)
        if candidate is not None
    ]

    def still_works(index: int, was_minted: bool, candidate: dict[str, Any]) -> list[tuple[int, str, bool]]:
        """Each token tried on the node that did not issue it (access) and on the other (refresh)."""
        me = requests.get(cluster.node(index + 1).url("/api/v1/me"), headers=bearer(candidate), timeout=30)
        again = post(
            cluster.node(index).url("/api/v1/token/refresh"),
            {"refresh_token": candidate["refresh_token"]},
            auth=auth,
        )
        return [
            (index, what, was_minted)
            for what, answer in (("access", me), ("refresh", again))
            if answer.status_code != 401
        ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        survivors = [found for result in pool.map(lambda c: still_works(*c), candidates) for found in result]
    refreshed = Counter(refresh for _, refresh, _ in outcomes)
    assert survivors == [], (survivors, refreshed)


def test_parallel_wrong_guesses_evaluate_at_most_the_threshold(
    postgres_cluster: Cluster, postgresql: str
) -> None:
    cluster = postgres_cluster
    auth = _client_auth(cluster, "guesses")
    with requests.Session() as http:
        username, hotp = _hotp_user(cluster, http)
    upcoming = {hotp.at(counter) for counter in range(hotp.next_counter + 100)}  # used ones too: replayed
    wrong = next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in upcoming)

    answers = at_once(
        [
            partial(
                post,
                cluster.node(index).url("/api/v1/verify"),
                {"username": username, "otp": wrong},
                auth=auth,
            )
            for index in range(GUESSES)
        ]
    )
    tally = Counter((answer.status_code, answer.json().get("code")) for answer in answers)
    assert tally == {(401, "invalid_otp"): GUESSES}, (tally, cluster.logs())

    [(fail_count, locked_until)] = _query(
        postgresql, "SELECT fail_count, locked_until FROM tokens WHERE id = :id", id=hotp.token_id
    )
    assert fail_count == THRESHOLD and locked_until is not None
    reasons = Counter(
        reason
        for (reason,) in _query(
            postgresql,
            "SELECT reason FROM audit_events WHERE action = 'verify.otp' AND target = :name",
            name=username,
        )
    )
    assert reasons == {"invalid_otp": THRESHOLD, "token_locked": GUESSES - THRESHOLD}, reasons
    locks = _query(
        postgresql,
        "SELECT id FROM audit_events WHERE action = 'token.lock' AND target = :t",
        t=f"token:{hotp.token_id}",
    )
    assert len(locks) == 1


def _transactions(cluster: Cluster, username: str, count: int) -> list[str]:
    """`count` password-verified transactions of the user, opened in parallel on alternate nodes."""
    answers = at_once(
        [
            partial(
                post, cluster.node(index).url("/api/v1/login"), {"username": username, "password": PASSWORD}
            )
            for index in range(count)
        ]
    )
    assert all(answer.status_code == 200 for answer in answers), [answer.text for answer in answers]
    return [answer.json()["transaction_id"] for answer in answers]


def _submit_at_once(
    cluster: Cluster, transaction_ids: list[str], field: str, code: str
) -> list[tuple[str, int, str]]:
    """(transaction, status, scope of the session or problem code) of each submission."""
    answers = at_once(
        [
            partial(post, cluster.node(index).url("/api/v1/verify"), {"transaction_id": tid, field: code})
            for index, tid in enumerate(transaction_ids)
        ]
    )
    return [
        (tid, answer.status_code, answer.json().get("scope", answer.json().get("code")))
        for tid, answer in zip(transaction_ids, answers, strict=True)
    ]


def test_a_recovery_or_temporary_code_signs_in_once_under_parallel_submissions(any_cluster: Cluster) -> None:
    cluster = any_cluster
    with requests.Session() as http:
        username, hotp = _hotp_user(cluster, http)
    challenge = post(cluster.node(0).url("/api/v1/login"), {"username": username, "password": PASSWORD})
    session = post(
        cluster.node(1).url("/api/v1/verify"),
        {"transaction_id": challenge.json()["transaction_id"], "otp": hotp.next_hotp()},
    ).json()
    created = post(cluster.node(0).url("/api/v1/recovery-codes"), {}, headers=bearer(session))
    assert created.status_code == 201, created.text
    recovery_code = created.json()["codes"][0]
    temporary = cluster.console_json("user", "temp-code", username, "--ttl", "30m")

    recovery = _submit_at_once(
        cluster, _transactions(cluster, username, SUBMISSIONS), "recovery_code", recovery_code
    )
    # The losers' transactions are still open (a wrong answer spends an attempt, not the transaction).
    still_open = [tid for tid, status, _ in recovery if status != 200]
    transaction_ids = still_open + _transactions(cluster, username, SUBMISSIONS - len(still_open))
    temporary_answers = _submit_at_once(cluster, transaction_ids, "temporary_code", temporary["code"])
    remaining = requests.get(
        cluster.node(1).url("/api/v1/recovery-codes"), headers=bearer(session), timeout=30
    )

    tally = Counter((status, what) for _, status, what in recovery)
    assert tally == {(200, "enroll"): 1, (401, "invalid_recovery_code"): SUBMISSIONS - 1}, (
        tally,
        cluster.logs(),
    )
    tally = Counter((status, what) for _, status, what in temporary_answers)
    assert tally == {(200, "enroll"): 1, (401, "invalid_temporary_code"): SUBMISSIONS - 1}, (
        tally,
        cluster.logs(),
    )
    assert remaining.json() == {"remaining": 9}
