"""`tokenward serve`: migrate, build the app once, then become gunicorn's master, whose workers fork with
the app already loaded (gunicorn's `preload_app`): one import of the application per server, not one per
worker process."""

from __future__ import annotations

import gc
import ipaddress
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click
import gunicorn
from gunicorn.app.wsgiapp import WSGIApplication

from provisioning.console import out, service_context, settings_from_env
from server.db import current_session

# Threads per worker process: requests reach them whole (server.gunicorn_worker), so a thread is only busy
# while the application runs; enough to keep a worker busy while some of its requests wait for the database.
THREADS_PER_WORKER = 8
WORKER_CLASS = "server.gunicorn_worker.BufferingThreadWorker"
# A worker whose event loop stops answering the master this long is restarted (threads are not: each
# dependency they wait for has its own timeout).
WORKER_TIMEOUT_SECONDS = 30
# Idle kept-alive connections are closed after this (a load balancer's pool keeps its own shorter).
KEEPALIVE_SECONDS = 5
# gunicorn >= 25.1 listens on a control socket, by default one path per user ($XDG_RUNTIME_DIR or
# ~/.gunicorn/gunicorn.ctl): two nodes on one host would take it from each other, and the first to stop
# would remove the other's. Each instance gets its own, in its (0700) instance directory.
CONTROL_SOCKET_SINCE = (25, 1)
# What gunicorn would import; PreloadedApplication builds it itself (named for gunicorn's checks and logs).
APP_SPEC = "server.app:create_app()"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the production server (gunicorn). With no configuration: SQLite in ./instance, keys generated.

    Refuses to start, with one line, when the database does not answer or its secrets were sealed with
    another TOKENWARD_ENCRYPTION_KEY."""
    # Port 0 (any free port, for tests) has no address to derive from: the public URL's default stands.
    settings = settings_from_env(default_public_url=local_public_url(host, port) if port else None)
    with service_context(settings, create=True) as rt:
        rt.keys.signing_key(current_session(), now=rt.now())  # one key created here, not raced by the workers
        instance_dir = rt.settings.instance_dir.resolve()
    metrics_dir = instance_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of a previous run would be added in
    metrics_dir.mkdir(mode=0o700)
    out.print(f"Tokenward listening on {host}:{port} with {workers} workers", markup=False)
    if is_wildcard(host) and settings.public_url == local_public_url(host, port):
        out.print(
            "Listening on every address: set TOKENWARD_PUBLIC_URL (or public_url in the config file) to the "
            "address people open, or security keys and sign-in work only from this machine.",
            markup=False,
        )
    # The app is built from the environment, with the public URL decided here. prometheus_client reads
    # PROMETHEUS_MULTIPROC_DIR when first imported, which building the app does (the console has not yet):
    # every worker then writes its figures to files there, and /metrics adds them up.
    os.environ["TOKENWARD_PUBLIC_URL"] = settings.public_url
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    sys.stdout.flush()
    args = gunicorn_args(
        bind=f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}",
        workers=workers,
        control_socket=instance_dir / "gunicorn.ctl",
    )
    PreloadedApplication(args).run()


class PreloadedApplication(WSGIApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn with our command line (and GUNICORN_CMD_ARGS, as gunicorn reads it), serving the app this
    process builds before the workers fork."""

    def __init__(self, args: list[str]) -> None:
        self._args = [*args, APP_SPEC]
        super().__init__("tokenward serve")

    def load_config(self) -> None:
        argv, sys.argv = sys.argv, ["tokenward serve", *self._args]
        try:
            super().load_config()
        finally:
            sys.argv = argv

    def load_wsgiapp(self) -> Any:
        from server.app import create_app

        app = create_app()
        # What is built so far (modules, the app) lives as long as the process: out of the collector's
        # sight, a worker's collections neither walk it (copying the pages it shares with the master) nor
        # spend the second of CPU each process took on it at exit (a stop took 2 s, now 0.3 s).
        gc.freeze()
        return app


def is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")  # noqa: S104 (recognising the wildcard, not binding it)


def local_public_url(host: str, port: int) -> str:
    """The public URL when none is configured: what a browser on this machine opens. Loopback and wildcard
    addresses become `localhost`, since WebAuthn needs a name (an RP ID cannot be an IP address)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        name = host or "localhost"  # a host name: the address people open
    else:
        if address.is_loopback or is_wildcard(host):
            name = "localhost"
        else:
            name = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{name}:{port}"


def gunicorn_argv(app: str, *, bind: str, workers: int, control_socket: Path) -> list[str]:
    """A `python -m gunicorn` command line serving `app` (a gunicorn app spec) as `tokenward serve` serves
    (the benchmarks run bare Flask with it)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *gunicorn_args(bind=bind, workers=workers, control_socket=control_socket),
        app,
    ]


def gunicorn_args(*, bind: str, workers: int, control_socket: Path) -> list[str]:
    """gunicorn's options for `tokenward serve`: worker model, timeouts, logs, hooks, app preloaded."""
    args = [
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--worker-class",
        WORKER_CLASS,
        "--threads",
        str(THREADS_PER_WORKER),
        "--timeout",
        str(WORKER_TIMEOUT_SECONDS),
        "--keep-alive",
        str(KEEPALIVE_SECONDS),
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--config",
        "python:server.gunicorn_config",
        "--preload",
    ]
    if tuple(gunicorn.version_info) >= CONTROL_SOCKET_SINCE:
        args += ["--control-socket", str(control_socket)]
    return args
