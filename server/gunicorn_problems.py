"""gunicorn's own error answers (a malformed or over-long request line, too many headers, a failure
before the app is reached) as problem+json instead of its HTML pages.

gunicorn writes these with `gunicorn.util.write_error`, called through the module; `install()` (run by
server.gunicorn_config when gunicorn loads it, before any worker forks) puts `write_problem` in its place.
The detail is fixed per status and never echoes the request (which may carry a token or a code).
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

PROBLEM_TYPE_BASE = "https://tokenward.dev/problems/"
_PROBLEMS = {
    400: ("malformed_request", "The request is not valid HTTP"),
    403: ("forbidden", "The request is not allowed"),
    408: ("request_timeout", "The request was not received in time"),
    413: ("body_too_large", "The request body is too large"),
    414: ("request_line_too_long", "The request line is too long"),
    417: ("expectation_failed", "The Expect header cannot be met"),
    431: ("headers_too_large", "The request headers are too large"),
    501: ("not_implemented", "The transfer coding is not supported"),
}
_INTERNAL = ("internal_error", "An unexpected error occurred before the request reached the application")


def problem_response(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    code, detail = _PROBLEMS.get(status, _INTERNAL)
    body = json.dumps(
        {"type": PROBLEM_TYPE_BASE + code, "title": reason, "status": status, "detail": detail, "code": code}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock: socket.socket, status_int: int, reason: str, _mesg: str) -> None:
    """`gunicorn.util.write_error`'s signature; the message (it quotes the request) is left out."""
    util.write_nonblock(sock, problem_response(status_int, reason))


def install() -> None:
    util.write_error = write_problem
