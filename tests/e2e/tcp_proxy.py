"""A TCP proxy on a free loopback port in front of a real service (PostgreSQL, Redis), which a test controls
to make that service hang or vanish for the server in front of it.

- `forward()` (the start): bytes flow both ways.
- `pause()`: connections are still accepted, but nothing is forwarded either way (a server that stopped
  answering: the kernel acknowledges what is sent, no answer ever comes).
- `refuse()`: the port stops listening (connections are refused) and every open connection is cut (a
  server that is gone).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType

from sqlalchemy.engine import make_url

POLL_SECONDS = 0.05  # how often a paused or idle pump looks at its state again
CONNECT_SECONDS = 5.0


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._lock = threading.Lock()
        self._gate = threading.Lock()  # held while a chunk crosses, so that pause() is immediate
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    @classmethod
    def in_front_of(cls, url: str, *, default_port: int) -> TcpProxy:
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or default_port)

    def url_through(self, url: str) -> str:
        """`url` (an SQLAlchemy or Redis URL) with its host and port replaced by the proxy's."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def forward(self) -> None:
        if self._listener is None:
            self._listen()
        self._forwarding.set()

    def pause(self) -> None:
        """From return on, no byte crosses: a pump forwarding a chunk holds the gate until it is sent."""
        with self._gate:
            self._forwarding.clear()

    def refuse(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            _cut(sock)
        self._forwarding.set()  # paused pumps wake up and find their sockets closed

    def close(self) -> None:
        self.refuse()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # 0 the first time; the same port again after refuse()
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._listener is None:
                return False
            self._open.add(sock)
            return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: refuse()
                return
            if self._track(client):
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()
            else:
                _cut(client)

    def _serve(self, client: socket.socket) -> None:
        while not self._forwarding.wait(POLL_SECONDS):  # accepted while paused: connect on resume
            if client.fileno() < 0:
                return
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_SECONDS)
        except OSError:
            _cut(client)
            return
        if not self._track(upstream):
            _cut(upstream)
            _cut(client)
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while source.fileno() >= 0 and sink.fileno() >= 0:
                if not self._forwarding.wait(POLL_SECONDS):
                    continue  # paused: leave the bytes unread
                readable, _, _ = select.select([source], [], [], POLL_SECONDS)
                if not readable:
                    continue
                with self._gate:
                    if not self._forwarding.is_set():
                        continue  # paused while this pump waited for bytes
                    data = source.recv(65_536)
                    if data:
                        sink.sendall(data)
                if not data:
                    break
        except (OSError, ValueError):
            pass
        _cut(source)
        _cut(sink)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
