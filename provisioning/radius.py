"""`tokenward radius …`: serve RADIUS, and register, list and remove the NASes allowed to ask."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from provisioning.console import (
    CONSOLE_ACTOR,
    expected_errors,
    fail,
    out,
    print_json,
    service_context,
    settings_from_env,
)
from server.db import current_session
from server.services import radius_clients

DEFAULT_LISTEN = "127.0.0.1:1812"


@click.group("radius")
def radius_group() -> None:
    """RADIUS front end: VPNs, network gear and PAM logins ask Tokenward over RADIUS (PAP)."""


@radius_group.group("client")
def client_group() -> None:
    """Manage RADIUS clients (NASes): the network they speak from and their shared secret."""


def _listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        fail(f"--listen: expected HOST:PORT, got {listen!r}")
    return host, int(port)


@radius_group.command("serve")
@click.option(
    "--listen", default=DEFAULT_LISTEN, show_default=True, help="UDP address and port to answer on."
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--metrics", "metrics_listen", help="HOST:PORT to serve Prometheus /metrics on (default: none)."
)
def serve(listen: str, workers: int, metrics_listen: str | None) -> None:
    """Answer Access-Requests from registered RADIUS clients (until SIGTERM)."""
    from server.radius import supervisor  # the worker machinery, for this command only

    host, port = _listen_address(listen)
    metrics_address = _listen_address(metrics_listen) if metrics_listen else None
    settings = settings_from_env()
    instance_dir = settings.instance_dir.resolve()
    metrics_dir = _fresh_metrics_dir(instance_dir) if metrics_address else None
    # The workers' fork server imports their code while this process migrates the schema (a second each).
    supervisor.start_fork_server(metrics_dir)
    with service_context(settings, create=True):  # migrates the schema once, before the workers start
        pass
    if metrics_dir is not None and metrics_address is not None:
        _serve_metrics(metrics_dir, metrics_address)

    def listening(bound_port: int) -> None:
        out.print(f"Tokenward RADIUS on udp {host}:{bound_port}, {workers} workers", markup=False)
        sys.stdout.flush()

    supervisor.run(settings, host=host, port=port, workers=workers, on_listening=listening)


def _fresh_metrics_dir(instance_dir: Path) -> Path:
    """Where every worker writes its figures (emptied: a previous run's figures are not this one's)."""
    import shutil

    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the app makes it, on a first run
    metrics_dir = instance_dir / "radius-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(mode=0o700)
    return metrics_dir


def _serve_metrics(metrics_dir: Path, address: tuple[str, int]) -> None:
    """This process serves the sum of the workers' figures."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    start_http_server(address[1], addr=address[0], registry=registry)


@client_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Network the NAS sends from, CIDR (one host: 192.0.2.7/32).")
@click.option(
    "--secret-stdin", is_flag=True, help="Read the shared secret from stdin instead of generating one."
)
@click.option(
    "--code-only", is_flag=True, help="The NAS checks the password itself; User-Password is the code."
)
@click.option(
    "--legacy-unsigned-requests",
    is_flag=True,
    help="Take requests without Message-Authenticator (but never with Proxy-State) from a NAS too old to "
    "sign them, such as pam_radius_auth 2.0.0. Answers are always signed.",
)
@click.option("--allow", help="Comma-separated methods: otp,fob (default: both).")
@click.option("--require", type=click.Choice(["mfa"]), help="Least sign-in it accepts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with `secret` when generated).")
@expected_errors
def add_client(
    name: str,
    address: str,
    secret_stdin: bool,
    code_only: bool,
    legacy_unsigned_requests: bool,
    allow: str | None,
    require: str | None,
    as_json: bool,
) -> None:
    """Register RADIUS client NAME; a generated shared secret is printed once."""
    secret = sys.stdin.readline().rstrip("\r\n") if secret_stdin else None
    methods = [item.strip() for item in allow.split(",") if item.strip()] if allow else None
    with service_context() as rt:
        created = radius_clients.add_radius_client(
            current_session(),
            rt,
            name=name,
            address=address,
            secret=secret,
            code_only=code_only,
            require_message_authenticator=not legacy_unsigned_requests,
            allow=methods,
            require=require or "",
            actor=CONSOLE_ACTOR,
        )
    view = radius_clients.radius_client_view(created.peer)
    if as_json:
        print_json({**view, **({"secret": created.secret} if created.secret is not None else {})})
        return
    out.print(f"RADIUS client {view['name']} for {view['address']}", markup=False)
    if created.secret is not None:
        out.print(f"secret: {created.secret}", markup=False)
        out.print("The secret is shown this once; give it to the NAS.", markup=False)


@client_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_clients(as_json: bool) -> None:
    """List RADIUS clients (never their secrets)."""
    with service_context() as rt:
        views = [
            radius_clients.radius_client_view(peer)
            for peer in radius_clients.list_radius_clients(current_session(), rt)
        ]
    if as_json:
        print_json(views)
        return
    table = Table("client", "address", "code only", "allow", "require")
    for view in views:
        table.add_row(
            view["name"],
            view["address"],
            "yes" if view["code_only"] else "no",
            ",".join(view["allow"]),
            view["require"] or "",
        )
    out.print(table)


@client_group.command("remove")
@click.argument("name")
@expected_errors
def remove_client(name: str) -> None:
    """Remove RADIUS client NAME; its pending challenges end."""
    with service_context() as rt:
        radius_clients.remove_radius_client(current_session(), rt, name=name, actor=CONSOLE_ACTOR)
    out.print(f"removed RADIUS client {name}", markup=False)
