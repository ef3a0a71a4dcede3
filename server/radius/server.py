"""`tokenward radius serve`: worker processes, each a blocking UDP loop on its own SO_REUSEPORT socket.

Why processes and not an asyncio loop: answering is CPU work (an Argon2id password check, an HMAC per code)
and blocking database work (SQLAlchemy's synchronous sessions, the same services the HTTP workers run); one
asyncio loop would serialise all of it on one core behind the GIL. Several processes use every core, share
nothing but the database (as the HTTP nodes do: a challenge issued by one worker or node is answered by any
other), and a stuck request holds up one worker only.

Why SO_REUSEPORT sockets and not one shared socket: the kernel spreads datagrams over the workers by a hash
of the source address and port, so a NAS's retransmission reaches the worker that answered it first and
that worker's duplicate cache gives the same answer again. (A retransmission that reaches another node
after a failover is checked again; single use makes that a refusal, never a second acceptance.)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from server.clock import SystemClock
from server.config import Settings
from server.db import engine_options, prepare_engine
from server.directories import open_directories
from server.radius.handler import RequestHandler
from server.radius.limits import UserLimiter
from server.services import passwords
from server.services.crypto import load_or_create_key, secret_box
from server.services.keys import KeyRing
from server.services.runtime import Runtime

log = logging.getLogger(__name__)

RECEIVE_BYTES = 4097  # one more than a RADIUS packet may be: a longer datagram is seen as too long
STARTUP_SECONDS = 30.0


def build_runtime(settings: Settings) -> tuple[Runtime, Callable[[], Session]]:
    """What the services need, without Flask: a runtime and a session factory on a tuned engine."""
    instance_dir = settings.instance_dir.resolve()
    passwords.use_costs(settings)
    box = secret_box(settings, load_or_create_key(instance_dir, settings.encryption_key))
    keys = KeyRing(box, cache_seconds=settings.signing_key_cache_seconds)
    timeouts = settings.database_timeouts
    engine = create_engine(settings.sqlalchemy_url, **engine_options(settings.sqlalchemy_url, timeouts))
    prepare_engine(engine, timeouts)
    rt = Runtime(
        settings=settings, clock=SystemClock(), box=box, keys=keys, directories=open_directories(settings)
    )
    return rt, sessionmaker(bind=engine, expire_on_commit=False)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_forever(sock: socket.socket, handler: RequestHandler) -> None:
    while True:
        data, source = sock.recvfrom(RECEIVE_BYTES)
        reply = handler.handle(data, (source[0], source[1]))
        if reply is not None:
            try:
                sock.sendto(reply, source)
            except OSError as err:  # an unreachable NAS must not stop the worker
                log.warning("could not answer %s: %s", source[0], err)


def _worker(settings: Settings, host: str, port: int, ready: Connection) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    rt, sessions = build_runtime(settings)
    limiter = UserLimiter(settings) if settings.rate_limits.enabled else None
    sock = bind_socket(host, port)
    ready.send(sock.getsockname()[1])
    ready.close()
    serve_forever(sock, RequestHandler(sessions, rt, limiter=limiter))


def run(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    metrics_dir: Path | None,
    on_listening: Callable[[int], None],
) -> None:
    """Starts the workers, reports the port (a chosen one for port 0), and waits; SIGTERM/SIGINT stop all.
    A worker that dies is started again."""
    if metrics_dir is not None:
        # Read by prometheus_client when a worker imports it: each worker writes its figures there.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    placeholder = bind_socket(host, port)  # holds the port (port 0: picks one) while the workers bind it
    port = placeholder.getsockname()[1]
    # Workers fork from a fork server, a fresh process started now (so it sees PROMETHEUS_MULTIPROC_DIR)
    # that imports this module once: a worker starts in milliseconds and inherits no thread, connection or
    # lock of this process, which may already serve metrics on a thread of its own.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    processes: list[multiprocessing.process.BaseProcess] = []

    def start_worker() -> multiprocessing.process.BaseProcess:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker,
            args=(settings, host, port, sender),
            daemon=True,
        )
        process.start()
        sender.close()
        if not receiver.poll(STARTUP_SECONDS):
            process.kill()
            raise RuntimeError("a RADIUS worker did not start in time")
        receiver.recv()
        return process

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        processes = [start_worker() for _ in range(workers)]
        placeholder.close()  # from now on the workers' sockets take every datagram
        on_listening(port)
        while not stopping:
            for index, process in enumerate(processes):
                process.join(timeout=0.5 / len(processes))
                if not process.is_alive() and not stopping:
                    log.error(
                        "RADIUS worker %s exited with %s; starting another", process.pid, process.exitcode
                    )
                    processes[index] = start_worker()
    finally:
        placeholder.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
