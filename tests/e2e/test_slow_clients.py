"""Slow and broken clients against a real `tokenward serve --workers 2`: fifty stalled connections leave
sign-in answering, a request that never completes gets 408, and what the server layer answers itself
(malformed or over-long requests, a body cut short, broken chunked framing) is problem+json, never HTML.
Chunked bodies end where their chunks say, not where their bytes look like a last chunk.

One server serves the module.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
import requests

from server.request_framing import HEAD_LIMIT_BYTES, RequestState, request_state
from tests.e2e.serve_process import PASSWORD, OtpToken, ServeProcess, add_user, enroll_token, server_env

pytestmark = pytest.mark.slow

STALLED_CLIENTS = 50  # far more than the node's threads (2 workers, 8 threads each)
FAKE_LAST_CHUNK_CLIENTS = 40
PIPELINING_CLIENTS = 40
UNJUDGED_FRAMING_CLIENTS = 100
# Long enough that sign-in is answered well before the stalled requests time out (the test checks they
# are all still waiting afterwards), short enough to see the 408 without making the module slow.
CLIENT_REQUEST_SECONDS = 5
SOCKET_SECONDS = 30.0  # far above the server's bound; a hang fails the test instead of blocking it


@dataclass
class Node:
    server: ServeProcess
    port: int
    username: str
    token: OtpToken

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=SOCKET_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=f"sqlite:///{tmp_path / 'tokenward.db'}",
        encryption_key=secrets.token_hex(32),
        rate_limits="off",
        client_request_timeout=str(CLIENT_REQUEST_SECONDS),
    )
    with ServeProcess.start(env, log_path=Path(tmp_path / "serve.log"), workers=2) as server:
        add_user(env, "stella")
        token = enroll_token(requests.Session(), server.base_url, "stella")
        yield Node(server, int(server.base_url.rsplit(":", 1)[1]), "stella", token)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the one answer on `sock`, read until it closes."""
    data = b""
    while chunk := sock.recv(65_536):
        data += chunk
    return _parse_answer(data)


def _parse_answer(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert b"<html" not in body.lower()
    assert (got_status, headers.get("content-type")) == (status, "application/problem+json"), body
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (status, code)


def _stall(node: Node, index: int) -> socket.socket:
    """A connection that stops: before sending anything, mid-headers, or mid-body."""
    sock = node.connect()
    partial = [
        b"",
        b"POST /api/v1/verify HTTP/1.1\r\nHost: tokenward\r\nContent-Ty",
        b"POST /api/v1/verify HTTP/1.1\r\nHost: tokenward\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"username": "stella", ',
    ][index % 3]
    sock.sendall(partial)
    return sock


def _still_waiting(sock: socket.socket) -> bool:
    """Open and unanswered: nothing to read yet, and no end of stream."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(SOCKET_SECONDS)
    return False


def _sign_in_twice(node: Node) -> None:
    """Health check, password and one-time code, twice, each answered within the test's HTTP timeout."""
    with requests.Session() as http:
        for _ in range(2):
            assert http.get(node.server.url("/healthz"), timeout=SOCKET_SECONDS).status_code == 200
            challenge = http.post(
                node.server.url("/api/v1/login"),
                json={"username": node.username, "password": PASSWORD},
                timeout=SOCKET_SECONDS,
            )
            assert challenge.status_code == 200, challenge.text
            answer = {"transaction_id": challenge.json()["transaction_id"], "otp": node.token.next_hotp()}
            verified = http.post(node.server.url("/api/v1/verify"), json=answer, timeout=SOCKET_SECONDS)
            assert verified.status_code == 200, verified.text


def test_fifty_stalled_clients_leave_sign_in_answering(node: Node) -> None:
    stalled = [_stall(node, index) for index in range(STALLED_CLIENTS)]
    try:
        _sign_in_twice(node)
        # Answered while every stalled request was still waiting: none of them held a thread.
        assert all(_still_waiting(sock) for sock in stalled)
        # A request that never completes is answered 408 once its time is up, and closed.
        _assert_problem(_read_answer(stalled[2]), 408, "request_timeout")
    finally:
        for sock in stalled:
            sock.close()


_PIPELINED_HEALTHZ_THEN_HALF_A_LOGIN = (
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{"
)


def test_a_pipelined_request_still_arriving_holds_no_thread(node: Node) -> None:
    """Forty connections each send a whole request and, in the same write, the start of the next one: the
    first is answered, and the second waits in the worker's loop (for the rest of it, or its 408), not in a
    thread that took the connection back after the first answer."""
    pipelining = []
    try:
        for _ in range(PIPELINING_CLIENTS):
            sock = node.connect()
            sock.sendall(_PIPELINED_HEALTHZ_THEN_HALF_A_LOGIN)
            pipelining.append(sock)
        for sock in pipelining:
            status, _headers, body = _read_answer_of_length(sock.makefile("rb"))
            assert status == 200, body
            sock.sendall(b'"')  # one more byte of the unfinished request, as a trickling client sends
        _sign_in_twice(node)
        assert all(_still_waiting(sock) for sock in pipelining)
    finally:
        for sock in pipelining:
            sock.close()


def test_whole_pipelined_requests_are_all_answered_in_order(node: Node) -> None:
    login = json.dumps({"username": node.username, "password": "wrong"}).encode()
    with node.connect() as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2
            + b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n%s" % (len(login), login)
        )
        answers = sock.makefile("rb")
        statuses = [_read_answer_of_length(answers)[0] for _ in range(3)]
    assert statuses == [200, 200, 401]


def test_framing_the_loop_cannot_judge_is_refused_there(node: Node) -> None:
    """A hundred requests with both Content-Length and chunked, whose clients then wait, are each answered
    400 and closed by the worker's loop, and sign-in keeps answering meanwhile."""
    head = _CHUNKED_LOGIN_HEAD.replace(b"Transfer-Encoding", b"Content-Length: 10\r\nTransfer-Encoding")
    smuggling = []
    try:
        for _ in range(UNJUDGED_FRAMING_CLIENTS):
            sock = node.connect()
            sock.sendall(head + _chunk(b"hello"))
            smuggling.append(sock)
        _sign_in_twice(node)
        for sock in smuggling:
            _assert_problem(_read_answer(sock), 400, "malformed_request")
    finally:
        for sock in smuggling:
            sock.close()


@pytest.mark.parametrize(
    "framing",
    [b"Transfer-Encoding: gzip", b"Content-Length: four", b"Content-Length: 2\r\nContent-Length: 2"],
    ids=["te-not-chunked", "cl-not-a-number", "cl-twice"],
)
def test_framing_that_cannot_be_judged_is_refused_with_problem_json(node: Node, framing: bytes) -> None:
    with node.connect() as sock:
        sock.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\n" + framing + b"\r\n\r\n{}")
        _assert_problem(_read_answer(sock), 400, "malformed_request")


_CHUNKED_LOGIN_HEAD = (
    b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_last_chunk_inside_chunk_data_holds_no_thread(node: Node) -> None:
    """A 7-byte chunk whose data is `\\r\\n0\\r\\n\\r\\n` is not the end of the body: forty such requests wait
    in the worker's loop (for the rest of their body, or their 408), not in its threads."""
    fake_ends = []
    try:
        for _ in range(FAKE_LAST_CHUNK_CLIENTS):
            sock = node.connect()
            sock.sendall(_CHUNKED_LOGIN_HEAD + b"7\r\n\r\n0\r\n\r\n")
            fake_ends.append(sock)
        _sign_in_twice(node)
    finally:
        for sock in fake_ends:
            sock.close()


def test_a_chunked_body_holding_a_last_chunk_is_read_whole(node: Node) -> None:
    """The bytes of a last chunk in a chunk's data are data: the application sees the whole body (here a
    number where the password belongs, which it refuses by name)."""
    with node.connect() as sock:
        sock.sendall(_CHUNKED_LOGIN_HEAD + _chunk(b'{"username": "stella", "password":\r\n0\r\n\r\n'))
        sock.sendall(_chunk(b"}") + b"0\r\n\r\n")
        status, headers, body = _read_answer_of_length(sock.makefile("rb"))
    assert (status, headers.get("content-type")) == (422, "application/problem+json"), body
    assert b"password" in body


def test_a_chunked_body_with_trailers_is_served(node: Node) -> None:
    login = json.dumps({"username": node.username, "password": PASSWORD}).encode()
    with node.connect() as sock:
        sock.sendall(_CHUNKED_LOGIN_HEAD + _chunk(login[:10]) + _chunk(login[10:]) + b"0\r\nX-T: 1\r\n\r\n")
        status, _headers, body = _read_answer_of_length(sock.makefile("rb"))
    assert status == 200, body
    assert json.loads(body)["transaction_id"]


def _read_answer_of_length(answers: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the next answer on a kept-alive connection (`sock.makefile("rb")`, kept
    for the connection's later answers: one read may bring more than one answer)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = answers.readline()
        assert line, head
        head += line
    status, headers, _ = _parse_answer(head)
    body = answers.read(int(headers["content-length"]))
    return status, headers, body


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hex
        b"-2\r\n{}\r\n0\r\n\r\n",
        b"0x2\r\n{}\r\n0\r\n\r\n",
        b"2 \r\n{}\r\n0\r\n\r\n",  # white space without an extension
        b"2;=\r\n{}\r\n0\r\n\r\n",  # an extension without a name
        b"2\r\n{}XY0\r\n\r\n",  # data longer than its size
        b"1" * 5000,  # a chunk-size line with no end
        b"2\n{}",  # a chunk-size line ended by a bare LF
        b"2\r\n{}\r\n0\r\nX-T: 1\n\r\n",  # a bare LF in the trailers
    ],
    ids=["not-hex", "negative", "0x", "white-space", "empty-ext", "long-data", "endless", "lf", "trailer-lf"],
)
def test_broken_chunked_framing_is_refused_with_problem_json(node: Node, body: bytes) -> None:
    with node.connect() as sock:
        sock.sendall(_CHUNKED_LOGIN_HEAD + body)
        _assert_problem(_read_answer(sock), 400, "malformed_request")


def test_a_chunked_body_over_the_limit_is_refused_at_its_size(node: Node) -> None:
    with node.connect() as sock:
        sock.sendall(_CHUNKED_LOGIN_HEAD + b"10001\r\n")  # 65,537 bytes announced: over the default limit
        _assert_problem(_read_answer(sock), 413, "body_too_large")


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: tokenward\r\n\r\n", 414, "request_line_too_long"),
        (b"NOT AN HTTP REQUEST\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\r\n" + b"X-Filler: " + b"f" * 40_000 + b"\r\n", 431, "headers_too_large"),
        (b"GET / HTTP/1.1\r\nHost: tokenward\r\n" + b"X-A: b\r\n" * 120 + b"\r\n", 431, "headers_too_large"),
    ],
    ids=["request-line-too-long", "malformed-request-line", "head-too-large", "too-many-headers"],
)
def test_what_the_server_layer_refuses_is_problem_json(
    node: Node, request_bytes: bytes, status: int, code: str
) -> None:
    with node.connect() as sock:
        sock.sendall(request_bytes)
        _assert_problem(_read_answer(sock), status, code)


def test_a_body_cut_short_is_refused_with_problem_json(node: Node) -> None:
    with node.connect() as sock:
        sock.sendall(
            b"POST /api/v1/verify HTTP/1.1\r\nHost: tokenward\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"username": "stella"'
        )
        sock.shutdown(socket.SHUT_WR)  # the client is done sending, 80 bytes short
        _assert_problem(_read_answer(sock), 400, "malformed_request")


@pytest.mark.parametrize(
    ("received", "state"),
    [
        (b"", RequestState.INCOMPLETE),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", RequestState.INCOMPLETE),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", RequestState.COMPLETE),
        (b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\n{}", RequestState.INCOMPLETE),
        (b"POST / HTTP/1.1\r\nContent-Length:  4\r\n\r\n{}{}", RequestState.COMPLETE),
        (b"POST / HTTP/1.1\r\nContent-Length: four\r\n\r\n", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", RequestState.COMPLETE),  # the app's 413
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", RequestState.INCOMPLETE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", RequestState.COMPLETE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n\r\n0\r\n\r\n", RequestState.INCOMPLETE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n", RequestState.COMPLETE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", RequestState.MALFORMED),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            RequestState.MALFORMED,
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RequestState.MALFORMED),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", RequestState.COMPLETE),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * HEAD_LIMIT_BYTES, RequestState.HEAD_TOO_LARGE),
    ],
)
def test_when_a_request_is_whole(received: bytes, state: RequestState) -> None:
    """What the worker's event loop waits for before a thread takes the request."""
    assert request_state(received) is state
