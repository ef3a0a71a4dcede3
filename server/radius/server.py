"""`tokenward radius serve`'s workers: processes, each a blocking UDP loop on its own SO_REUSEPORT socket
(started and watched by `server.radius.supervisor`).

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

import gc
import logging
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from server.clock import SystemClock
from server.config import Settings
from server.db import engine_options, prepare_engine
from server.directories import open_directories
from server.radius.handler import RequestHandler
from server.radius.limits import UserLimiter
from server.radius.supervisor import bind_socket
from server.services import passwords
from server.services.crypto import load_or_create_key, secret_box
from server.services.keys import KeyRing
from server.services.runtime import Runtime

log = logging.getLogger(__name__)

RECEIVE_BYTES = 4097  # one more than a RADIUS packet may be: a longer datagram is seen as too long


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


def serve_forever(sock: socket.socket, handler: RequestHandler) -> None:
    while True:
        data, source = sock.recvfrom(RECEIVE_BYTES)
        reply = handler.handle(data, (source[0], source[1]))
        if reply is not None:
            try:
                sock.sendto(reply, source)
            except OSError as err:  # an unreachable NAS must not stop the worker
                log.warning("could not answer %s: %s", source[0], err)


def run_worker(settings: Settings, host: str, port: int, ready: Connection) -> None:
    gc.freeze()  # the fork server's imports: never collected, as in run()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    rt, sessions = build_runtime(settings)
    limiter = UserLimiter(settings) if settings.rate_limits.enabled else None
    sock = bind_socket(host, port)
    ready.send(sock.getsockname()[1])
    ready.close()
    serve_forever(sock, RequestHandler(sessions, rt, limiter=limiter))
