"""The real `tokenward client …` and `tokenward user temp-code` commands, then what they made used over HTTP
against a real `tokenward serve` on the same database."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator

import pytest
import requests

from tests.accounts import everything_stored
from tests.e2e.cluster import Cluster, post, running_cluster
from tests.e2e.console_runner import run_console
from tests.e2e.serve_process import PASSWORD, add_user, bearer, enroll_token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One server for this module's tests (they make users of their own)."""
    tmp_path = tmp_path_factory.mktemp("console-node")
    with running_cluster(tmp_path, f"sqlite:///{tmp_path / 'tokenward.db'}", nodes=1) as cluster:
        yield cluster


def test_clients_made_at_the_console_authenticate_over_http(node: Cluster) -> None:
    server = node.node(0)
    username = f"alice-{secrets.token_hex(3)}"
    add_user(node.env, username)
    with requests.Session() as http:
        hotp = enroll_token(http, server.base_url, username, kind="hotp")

    created = node.console_json("client", "add", "shop", "--audience", "shop-api", "--allow", "otp")
    assert set(created) >= {"client_id", "client_secret"} and created["allow"] == ["otp"], created
    listed = node.console_json("client", "list")
    assert [view["name"] for view in listed] == ["shop"]
    assert created["client_secret"] not in node.console("client", "list")
    assert not [key for view in listed for key in view if "secret" in key], listed

    def one_step(auth: tuple[str, str]) -> requests.Response:
        return post(server.url("/api/v1/verify"), {"username": username, "otp": hotp.next_hotp()}, auth=auth)

    first = (created["client_id"], created["client_secret"])
    answer = one_step(first)
    assert answer.status_code == 200, (answer.text, server.log())
    assert (answer.json()["acr"], answer.json()["amr"]) == ("single-factor", ["otp"])
    logged = server.log(None)  # the access log names the caller (the client id), never its secret or code
    used_code = hotp.at(hotp.next_counter - 1)
    assert created["client_secret"] not in logged
    assert not re.search(rf"(?<![0-9A-Za-z]){used_code}(?![0-9A-Za-z])", logged), logged

    rotated = node.console_json("client", "rotate-secret", "shop")
    assert (
        rotated["client_id"] == created["client_id"] and rotated["client_secret"] != created["client_secret"]
    )
    assert one_step(first).status_code == 401
    second = (rotated["client_id"], rotated["client_secret"])
    assert one_step(second).status_code == 200

    assert "removed client shop" in node.console("client", "remove", "shop")
    refused = one_step(second)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_client")
    assert node.console_json("client", "list") == []


def test_a_temporary_code_from_the_console_replaces_a_lost_token_over_http(node: Cluster) -> None:
    server = node.node(0)
    username = f"bob-{secrets.token_hex(3)}"
    add_user(node.env, username)
    with requests.Session() as http:
        enroll_token(http, server.base_url, username, kind="hotp")

    issued = node.console_json("user", "temp-code", username, "--ttl", "30m")
    assert issued["username"] == username and set(issued) == {"username", "code", "expires_at"}
    plain = node.console("user", "temp-code", username, "--ttl", "2h")  # replaces the first one
    code = plain.split(": ", 1)[1].split()[0]

    def sign_in(temporary_code: str) -> requests.Response:
        challenge = post(server.url("/api/v1/login"), {"username": username, "password": PASSWORD}).json()
        return post(
            server.url("/api/v1/verify"),
            {"transaction_id": challenge["transaction_id"], "temporary_code": temporary_code},
        )

    assert sign_in(issued["code"]).status_code == 401  # replaced
    session = sign_in(code)
    assert session.status_code == 200, (session.text, server.log())
    assert (session.json()["scope"], session.json()["amr"]) == ("enroll", ["pwd", "temporary_code"])
    pending = post(server.url("/api/v1/tokens"), {"type": "totp"}, headers=bearer(session.json()))
    assert pending.status_code == 201, pending.text
    assert sign_in(code).status_code == 401  # single use


def test_a_client_secret_is_printed_once_on_standard_output_and_nowhere_else(node: Cluster) -> None:
    """`client add` and `client rotate-secret`, run as the program an admin starts: the secret is on stdout
    that once, never on stderr (the log), in the stored rows (a salted HMAC only), the audit log or the
    server's log."""
    added = run_console(("client", "add", "vault", "--json"), env=node.env, process=True)
    assert added.returncode == 0, added.stderr
    first = json.loads(added.stdout)["client_secret"]
    rotated = run_console(("client", "rotate-secret", "vault"), env=node.env, process=True)
    assert rotated.returncode == 0, rotated.stderr
    shown = re.search(r"client_secret: (\S+)", rotated.stdout)
    assert shown is not None and shown.group(1) != first, rotated.stdout
    stored = everything_stored(node.env["TOKENWARD_DATABASE_URL"])
    for secret in (first, shown.group(1)):
        assert secret not in added.stderr + rotated.stderr
        assert secret not in stored and secret not in node.logs()
        assert secret not in node.console("client", "list")
    node.console("client", "remove", "vault")
