"""`tokenward client …`: register, list, remove relying-party clients and rotate their secrets."""

from __future__ import annotations

import click
from rich.table import Table

from provisioning.console import CONSOLE_ACTOR, expected_errors, out, print_json, service_context
from server.db import current_session
from server.services import clients


@click.group("client")
def client_group() -> None:
    """Manage registered clients (applications that call one-step verify; OpenID Connect relying parties)."""


def _print_secret(created: clients.NewClient, *, as_json: bool) -> None:
    view = clients.client_view(created.client)
    if as_json:
        print_json({**view, "client_secret": created.secret})
        return
    out.print(f"client {view['name']}", markup=False)
    out.print(f"client_id:     {view['client_id']}", markup=False)
    if created.secret is None:
        out.print("client_secret: none (a public client keeps no secret)", markup=False)
        return
    out.print(f"client_secret: {created.secret}", markup=False)
    out.print("The secret is shown this once; store it in the application's configuration.", markup=False)


@client_group.command("add")
@click.argument("name")
@click.option("--audience", help="`aud` of the sessions issued for it (default: its client_id).")
@click.option("--allow", help="Comma-separated sign-in methods it may use: otp,fob,webauthn (default: all).")
@click.option(
    "--redirect-uri", "redirect_uris", multiple=True, help="OpenID Connect redirect URI (repeatable)."
)
@click.option("--public", is_flag=True, help="A public client (no secret can be kept; PKCE required).")
@click.option("--require", type=click.Choice(["mfa", "phishing-resistant"]), help="Least sign-in it accepts.")
@click.option(
    "--first-party", is_flag=True, help="Run by this operator: its users are not asked for consent (OIDC)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with client_id and client_secret).")
@expected_errors
def add_client(
    name: str,
    audience: str | None,
    allow: str | None,
    redirect_uris: tuple[str, ...],
    public: bool,
    require: str | None,
    first_party: bool,
    as_json: bool,
) -> None:
    """Register client NAME; prints its client_id and secret once."""
    methods = [item.strip() for item in allow.split(",") if item.strip()] if allow else None
    with service_context() as rt:
        created = clients.add_client(
            current_session(),
            rt,
            name=name,
            audience=audience,
            allow=methods,
            redirect_uris=list(redirect_uris),
            public=public,
            require=require or "",
            first_party=first_party,
            actor=CONSOLE_ACTOR,
        )
        _print_secret(created, as_json=as_json)


@client_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_clients(as_json: bool) -> None:
    """List registered clients (never their secrets)."""
    with service_context():
        views = [clients.client_view(client) for client in clients.list_clients(current_session())]
    if as_json:
        print_json(views)
        return
    table = Table("client", "client_id", "audience", "allow", "require")
    for view in views:
        table.add_row(
            view["name"], view["client_id"], view["audience"], ",".join(view["allow"]), view["require"] or ""
        )
    out.print(table)


@client_group.command("remove")
@click.argument("name")
@expected_errors
def remove_client(name: str) -> None:
    """Remove client NAME; its sessions and pending sign-ins end."""
    with service_context() as rt:
        clients.remove_client(current_session(), rt, name=name, actor=CONSOLE_ACTOR)
    out.print(f"removed client {name}", markup=False)


@client_group.command("rotate-secret")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def rotate_secret(name: str, as_json: bool) -> None:
    """Give client NAME a new secret (printed once); the old one stops working at once."""
    with service_context() as rt:
        _print_secret(
            clients.rotate_secret(current_session(), rt, name=name, actor=CONSOLE_ACTOR), as_json=as_json
        )
