"""`tokenward radius serve`'s supervisor: it starts the workers (`server.radius.server`) from a fork server,
restarts one that dies, and stops them all on SIGTERM/SIGINT.

Light to import on purpose: the console starts the fork server before it imports the app, so the fork
server's import of the workers' code and the console's own run side by side (a second each).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from server.config import Settings

log = logging.getLogger(__name__)

WORKER_MODULE = "server.radius.server"
STARTUP_SECONDS = 30.0


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def start_fork_server(metrics_dir: Path | None) -> None:
    """The process the workers fork from, started now: a fresh interpreter (it inherits no thread,
    connection or lock of this process, which may serve metrics on a thread of its own) that imports the
    workers' module once, so that a worker starts in milliseconds. It sees PROMETHEUS_MULTIPROC_DIR (set
    here)."""
    if metrics_dir is not None:
        # Read by prometheus_client when a worker imports it: each worker writes its figures there.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    multiprocessing.set_forkserver_preload([WORKER_MODULE])
    forkserver.ensure_running()


def run(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    on_listening: Callable[[int], None],
) -> None:
    """Starts the workers from the fork server (`start_fork_server`), reports the port (a chosen one for
    port 0), and waits; SIGTERM/SIGINT stop all. A worker that dies is started again."""
    from server.radius.server import run_worker  # imported by the fork server meanwhile

    # The imports and the console's app live as long as this process: out of the collector's sight, they
    # cost nothing at exit (a stop took 0.8 s, now 0.04 s with the wake-up below).
    gc.freeze()
    placeholder = bind_socket(host, port)  # holds the port (port 0: picks one) while the workers bind it
    port = placeholder.getsockname()[1]
    context = multiprocessing.get_context("forkserver")
    processes: list[multiprocessing.process.BaseProcess] = []

    def start_worker() -> multiprocessing.process.BaseProcess:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=run_worker,
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
    wake_reader, wake_writer = os.pipe()  # a stop signal ends the wait for a worker at once

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        os.write(wake_writer, b"\0")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        processes = [start_worker() for _ in range(workers)]
        placeholder.close()  # from now on the workers' sockets take every datagram
        on_listening(port)
        while not stopping:
            wait([wake_reader, *(process.sentinel for process in processes)])
            for index, process in enumerate(processes):
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
        os.close(wake_reader)
        os.close(wake_writer)
