"""gunicorn `gthread` workers that read each request whole before a thread takes it.

gunicorn's threads read a request from a blocking socket: a client that sends half its headers, or a body
shorter than its Content-Length, and then waits, holds a thread until it goes away, and a few dozen such
clients hold them all. Here the worker's event loop (the one that already accepts connections and watches
kept-alive ones) reads a request's head and body without blocking, and hands the connection to a thread
only when the request is complete, with the bytes already read given back to gunicorn's parser. A request
that is not complete within TOKENWARD_CLIENT_REQUEST_TIMEOUT seconds is answered 408 (problem+json) and
closed; one whose client closes its side half-way, 400. Threads then only ever run the application.

Bodies above `BODY_BUFFER_LIMIT_BYTES` (far above TOKENWARD_MAX_BODY_BYTES' default) are handed over as
they come: the application refuses them by their Content-Length without reading them.
"""

from __future__ import annotations

import contextlib
import enum
import selectors
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from server.config import Settings
from server.gunicorn_problems import problem_response

HEAD_LIMIT_BYTES = 32 * 1024  # request line and headers; gunicorn's own limits are per line and count
BODY_BUFFER_LIMIT_BYTES = 1024 * 1024
RECV_BYTES = 65_536
_HEAD_END = b"\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class RequestState(enum.Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"  # or malformed, or too long to wait for: either way gunicorn's parser judges it
    HEAD_TOO_LARGE = "head_too_large"


def request_state(data: bytes) -> RequestState:
    """Whether `data` (what a connection has sent so far) holds a whole HTTP/1.1 request."""
    end = data.find(_HEAD_END)
    if end < 0:
        return RequestState.HEAD_TOO_LARGE if len(data) > HEAD_LIMIT_BYTES else RequestState.INCOMPLETE
    body = data[end + len(_HEAD_END) :]
    length: int | None = None
    chunked = False
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return RequestState.COMPLETE  # gunicorn refuses it
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        done = body == _LAST_CHUNK or body.endswith(b"\r\n" + _LAST_CHUNK)
    else:
        done = length is None or len(body) >= length
    if done or len(body) > BODY_BUFFER_LIMIT_BYTES or (length or 0) > BODY_BUFFER_LIMIT_BYTES:
        return RequestState.COMPLETE
    return RequestState.INCOMPLETE


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """`ThreadWorker` whose event loop reads requests whole (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: list[Any] = []  # connections whose request is still arriving
        self.request_seconds = float(Settings.from_env().client_request_timeout)

    def enqueue_req(self, conn: Any) -> None:
        """Called for a new connection and for a kept-alive one that became readable: read its request
        first, unless it is already read (or gunicorn's parser holds the next one already)."""
        complete = getattr(conn, "request_bytes", None) is not None
        if complete or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            super().enqueue_req(conn)
            return
        conn.request_bytes, conn.received = None, bytearray()
        conn.read_deadline = time.monotonic() + self.request_seconds
        conn.sock.setblocking(False)
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # closed before its request was complete: told so if it still listens
            self._stop_reading(conn)
            if conn.received:
                self._refuse(conn, 400, "Bad Request")
            else:
                self._close(conn)
            return
        conn.received += data
        state = request_state(bytes(conn.received))
        if state is RequestState.INCOMPLETE:
            return
        self._stop_reading(conn)
        if state is RequestState.HEAD_TOO_LARGE:
            self._refuse(conn, 431, "Request Header Fields Too Large")
            return
        conn.request_bytes, conn.received = bytes(conn.received), bytearray()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        """In a thread: gives the bytes read to gunicorn's parser, then lets gunicorn run the request."""
        data, conn.request_bytes = getattr(conn, "request_bytes", None), None
        if data is not None:
            conn.data_ready = True
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [conn for conn in self.reading if conn.read_deadline <= now]:
            self._stop_reading(conn)
            self._refuse(conn, 408, "Request Timeout")

    def _stop_reading(self, conn: Any) -> None:
        self.reading.remove(conn)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)

    def _refuse(self, conn: Any, status: int, reason: str) -> None:
        with contextlib.suppress(OSError):  # best effort: the socket does not block
            conn.sock.send(problem_response(status, reason))
        self._close(conn)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()
