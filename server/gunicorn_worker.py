"""gunicorn `gthread` workers that read each request whole before a thread takes it.

gunicorn's threads read a request from a blocking socket: a client that sends half its headers, or a body
shorter than its Content-Length, and then waits, holds a thread until it goes away, and a few dozen such
clients hold them all. Here the worker's event loop (the one that already accepts connections and watches
kept-alive ones) reads a request's head and body without blocking, and hands the connection to a thread
only when the request is complete, with the bytes already read given back to gunicorn's parser. A request
that is not complete within TOKENWARD_CLIENT_REQUEST_TIMEOUT seconds is answered 408 (problem+json) and
closed; one whose client closes its side half-way, 400. Threads then only ever run the application. A
pipelined request (bytes of the next request already read with the last one) goes back through the same
reading once the answer before it is sent: a thread never waits for the rest of a request.

Where a request ends is judged by server.request_framing (a chunked body by parsing its chunks: malformed
framing 400, a body over TOKENWARD_MAX_BODY_BYTES 413). Framing it cannot judge (Content-Length with
Transfer-Encoding, a transfer coding not ending with chunked, a Content-Length twice or not a number) is
answered 400 by the loop and never handed on. Bodies with a Content-Length above
`BODY_BUFFER_LIMIT_BYTES` are handed over as they come: the application refuses them by their Content-Length
without reading them. In case the loop ever misjudges an end, every connection carries receive and send
timeouts (SO_RCVTIMEO, SO_SNDTIMEO: gunicorn's `setblocking(True)` leaves them in place) of
TOKENWARD_CLIENT_REQUEST_TIMEOUT: a thread waits for a client at most that long (a receive that times out is
answered 408 and the connection closed).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from functools import partial
from typing import Any

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

from server.config import Settings
from server.gunicorn_problems import problem_response
from server.request_framing import RequestReader, RequestState

RECV_BYTES = 65_536
_REFUSALS = {
    RequestState.HEAD_TOO_LARGE: (431, "Request Header Fields Too Large"),
    RequestState.MALFORMED: (400, "Bad Request"),
    RequestState.BODY_TOO_LARGE: (413, "Content Too Large"),
}


class TimedReceive:
    """The client socket as gunicorn's parser reads it: a receive that times out (SO_RCVTIMEO: the client
    sent less than the loop judged whole) is answered 408 and ends the connection, as the loop would."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv(self, size: int) -> bytes:
        try:
            return self.sock.recv(size)
        except (BlockingIOError, TimeoutError):
            with contextlib.suppress(OSError):  # best effort: sends time out too
                self.sock.sendall(problem_response(408, "Request Timeout"))
                self.sock.shutdown(socket.SHUT_RDWR)
            raise NoMoreData(b"") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """`ThreadWorker` whose event loop reads requests whole (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: list[Any] = []  # connections whose request is still arriving
        settings = Settings.from_env()
        self.request_seconds = float(settings.client_request_timeout)
        self.max_body_bytes = settings.max_body_bytes
        self.socket_timeout = struct.pack("ll", int(self.request_seconds), 0)  # struct timeval

    def enqueue_req(self, conn: Any) -> None:
        """Called for a new connection and for a kept-alive one that became readable or whose parser holds
        bytes read ahead (a pipelined request): read its request first, unless it is already read. Bytes read
        ahead go through the same completeness check, so a thread never waits for the rest of a request."""
        if getattr(conn, "request_bytes", None) is not None:
            super().enqueue_req(conn)
            return
        read_ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, self.socket_timeout)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self.socket_timeout)
        conn.request_bytes, conn.reader = None, RequestReader(max_body_bytes=self.max_body_bytes)
        conn.read_deadline = time.monotonic() + self.request_seconds
        conn.sock.setblocking(False)
        self.reading.append(conn)
        if read_ahead and self._take(conn, read_ahead):
            return
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
            if conn.reader.received:
                self._refuse(conn, 400, "Bad Request")
            else:
                self._close(conn)
            return
        self._take(conn, data)

    def _take(self, conn: Any, data: bytes) -> bool:
        """Feeds what arrived to the connection's reader; once the request is whole (or refused) the
        connection leaves the loop's reading (and poller, if there), and True is returned."""
        state = conn.reader.feed(data)
        if state is RequestState.INCOMPLETE:
            return False
        self._stop_reading(conn)
        if state in _REFUSALS:
            self._refuse(conn, *_REFUSALS[state])
            return True
        conn.request_bytes, conn.reader = bytes(conn.reader.received), None
        super().enqueue_req(conn)
        return True

    def handle(self, conn: Any) -> Any:
        """In a thread: gives the bytes read to gunicorn's parser, then lets gunicorn run the request."""
        data, conn.request_bytes = getattr(conn, "request_bytes", None), None
        if data is not None:
            conn.data_ready = True
            conn.sock.setblocking(True)
            conn.init()
            if not isinstance(conn.parser.unreader.sock, TimedReceive):
                conn.parser.unreader.sock = TimedReceive(conn.sock)
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
