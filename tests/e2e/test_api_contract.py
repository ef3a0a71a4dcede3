"""The OpenAPI document against a running `tokenward serve`, fuzzed by schemathesis (issue 16).

Every documented operation gets requests generated from its schemas: valid ones (which the server must not
refuse with 400/422) and invalid ones (which it must refuse), anonymously and with each kind of caller the
operation admits: an enroll-only session, a user's and an administrator's multi-factor sessions, a
registered client's Basic credentials. Every answer must be documented (status, content type, body schema)
and none may be a 5xx. Rate limits are off so that answers are not all 429 (429 is documented where it can
occur). Examples are few and derandomized: the run is bounded and the same each time.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.e2e.serve_process import (
    PASSWORD,
    ServeProcess,
    add_user,
    bearer,
    enroll_token,
    server_env,
)

pytestmark = pytest.mark.slow

# Examples per operation and mode for the caller an operation is meant for: enough to reach the branches of
# a schema's shape (each anyOf form, null or absent optionals), few enough to keep the run bounded. Other
# callers are refused whatever they send (401, 403): a valid request or two shows it is documented.
EXAMPLES = 4
GLANCE = 1
CHECK_NAMES = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
]
# The OAuth/OIDC endpoints answer an unknown client or grant with 400 as their standards say (RFC 6749 5.2,
# 4.1.2.1): a request valid by its shape is refused for what it names, not for its form.
SEMANTIC_400_PREFIX = "/oauth2/"
# Ends the session it is called with: run last.
SESSION_ENDING = {("POST", "/api/v1/logout")}


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Callers:
    anonymous: Caller
    enroll: Caller
    user: Caller
    admin: Caller
    client: Caller

    def for_operation(self, path: str, security: list[dict[str, Any]]) -> list[tuple[Caller, int]]:
        """Who calls an operation, and with how many examples each: the caller it is meant for first (it
        also gets invalid requests), then the others."""
        schemes = {name for requirement in security for name in requirement}
        if "bearer" in schemes:
            meant, others = (
                (self.admin, [self.user, self.enroll])
                if path.startswith("/api/v1/admin/")
                else (self.user, [self.admin, self.enroll])
            )
            return [(meant, EXAMPLES), *((caller, GLANCE) for caller in [*others, self.anonymous])]
        if "client" in schemes:
            return [(self.client, EXAMPLES), (self.anonymous, GLANCE)]
        return [(self.anonymous, EXAMPLES)]


def _full_session(http: requests.Session, base_url: str, username: str) -> dict[str, Any]:
    token = enroll_token(http, base_url, username)
    challenge = http.post(
        f"{base_url}/api/v1/login", json={"username": username, "password": PASSWORD}, timeout=10
    ).json()
    answer = http.post(
        f"{base_url}/api/v1/verify",
        json={"transaction_id": challenge["transaction_id"], "otp": token.next_hotp()},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _callers(env: dict[str, str], base_url: str) -> Callers:
    """The administrator comes from the console; everyone else from the administrator, over the API."""
    http = requests.Session()
    add_user(env, "root", admin=True)
    admin = bearer(_full_session(http, base_url, "root"))
    for username in ("alice", "newbie"):
        created = http.post(
            f"{base_url}/api/v1/admin/users",
            json={"username": username, "password": PASSWORD},
            headers=admin,
            timeout=10,
        )
        assert created.status_code == 201, created.text
    user = bearer(_full_session(http, base_url, "alice"))
    enroll = http.post(
        f"{base_url}/api/v1/login", json={"username": "newbie", "password": PASSWORD}, timeout=10
    ).json()
    assert enroll["status"] == "enroll", enroll
    client = http.post(
        f"{base_url}/api/v1/admin/clients", json={"name": "fuzzed-app"}, headers=admin, timeout=10
    ).json()
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    return Callers(
        anonymous=Caller("anonymous", {}),
        enroll=Caller("enroll", bearer(enroll)),
        user=Caller("user", user),
        admin=Caller("admin", admin),
        client=Caller("client", {"Authorization": f"Basic {basic}"}),
    )


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[ServeProcess, Callers]]:
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        encryption_key=secrets.token_hex(32),
        rate_limits="off",
        # Fuzzed answers count as failures; the default lockout would turn later ones into token_locked.
        lockout_threshold="100000",
    )
    with ServeProcess.start(env, log_path=tmp_path / "serve.log") as server:
        yield server, _callers(env, server.base_url)


def _run(operation: Any, mode: GenerationMode, examples: int, call: Callable[[Any], None]) -> str | None:
    """Runs `call` on `examples` generated cases; the first failure's report, or None."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is reported as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def examples_of(case: Any) -> None:
        call(case)

    try:
        examples_of()
    except Unsatisfiable:  # nothing to make invalid: no body, no parameters
        assert mode == GenerationMode.NEGATIVE
    except (Exception, BaseExceptionGroup) as failure:  # checks fail as groups; reported at the end
        return f"{operation.label} [{mode.value}]: {_described(failure)}"
    return None


def _described(failure: BaseException) -> str:
    if isinstance(failure, BaseExceptionGroup):
        return "\n".join(_described(inner) for inner in failure.exceptions)
    return f"{type(failure).__name__}: {failure}"


def test_the_server_keeps_the_promises_of_its_openapi_document(
    served: tuple[ServeProcess, Callers],
) -> None:
    server, callers = served
    load_all_checks()
    schema = schemathesis.openapi.from_url(server.url("/api/v1/openapi.json"))
    http = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) in SESSION_ENDING)
    assert len(operations) >= 50
    failures = []
    for operation in operations:
        names = list(CHECK_NAMES)
        if operation.path.startswith(SEMANTIC_400_PREFIX):
            names.remove("positive_data_acceptance")
        checks = CHECKS.get_by_names(names)
        security = operation.definition.raw.get("security", [])
        for index, (caller, examples) in enumerate(callers.for_operation(operation.path, security)):

            def call(case: Any, caller: Caller = caller, checks: list[Any] = checks) -> None:
                case.call_and_validate(
                    base_url=server.base_url,
                    session=http,
                    headers=caller.headers,
                    checks=checks,
                    timeout=10,
                    allow_redirects=False,
                )

            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE][: 2 if index == 0 else 1]
            for mode in modes:
                t0 = time.monotonic()
                failure = _run(operation, mode, examples, call)
                print(f"TIMING {time.monotonic() - t0:.2f} {operation.label} {caller.name} {mode.value}")
                if failure is not None:
                    failures.append(f"as {caller.name}: {failure}")
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.log(3000)
