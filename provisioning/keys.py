"""`tokenward keys rotate`: a new JWT signing key; the old one stays published until its tokens expire."""

from __future__ import annotations

import click

from provisioning.console import expected_errors, out, print_json, service_context
from server.db import current_session
from server.services.audit import Actor, record_event
from server.services.keys import rotate_signing_key


@click.group("keys")
def keys_group() -> None:
    """Manage JWT signing keys."""


@keys_group.command("rotate")
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: the new key id and how long the old one stays."
)
@expected_errors
def rotate(as_json: bool) -> None:
    """Start signing with a new key (other nodes follow within seconds)."""
    with service_context() as rt:
        record_event(
            current_session(), actor=Actor.console(), action="keys.rotate", result="success", now=rt.now()
        )
        kid = rotate_signing_key(current_session(), rt.box, now=rt.now())
    if as_json:
        print_json({"kid": kid, "previous_key_published_seconds": rt.settings.access_ttl})
        return
    out.print(f"new signing key {kid}; the previous key stays in the JWKS for {rt.settings.access_ttl} s")
