"""`tokenward key …`: users' FIDO2 security keys at the console.

`key enroll` registers a key for a user over CTAP: a USB key (CTAP HID) or, with `--emulator`, the software
authenticator. It runs the same services as `POST /api/v1/tokens {"type": "webauthn"}` and
`POST /api/v1/tokens/{id}/activate`: begin registration, the key makes a credential for the server's
origin (TOKENWARD_PUBLIC_URL), complete registration; the token is active and both steps are audited.
A ceremony that fails leaves no pending token behind.

`key list` lists enrolled security keys (webauthn tokens); `key list --attached` the FIDO2 USB devices
this machine sees. Not to be confused with `tokenward keys`, the server's JWT signing keys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from fido2.ctap import CtapDevice
from rich.table import Table

from devices.fido import console
from devices.fido.errors import FidoError, NoSecurityKey, PinRequired
from devices.fido.hid import list_security_keys, open_security_key
from devices.fido.soft_authenticator import SoftAuthenticator
from provisioning.console import (
    CONSOLE_ACTOR,
    err_console,
    expected_errors,
    fail,
    out,
    print_json,
    service_context,
)
from server.db import current_session
from server.errors import TokenwardError
from server.models import Token
from server.services import tokens, users, webauthn
from server.services.runtime import Runtime
from server.token_kinds import TokenState, TokenType

LIST_LIMIT = 1_000_000


@click.group("key")
def key_group() -> None:
    """Users' FIDO2 security keys: enroll one over USB, list them. (JWT signing keys: `tokenward keys`.)"""


def _open_device(emulator: bool, emulator_state: Path | None, device: str | None) -> CtapDevice:
    """The authenticator to enroll: the software one, or a USB key (the first attached, or `device`)."""
    if emulator_state is not None and not emulator:
        fail("--emulator-state needs --emulator")
    if emulator and device is not None:
        fail("--device and --emulator exclude each other")
    try:
        if emulator:
            return SoftAuthenticator(state_file=emulator_state)
        return open_security_key(device)
    except NoSecurityKey as err:
        hint = "" if device is not None else " (plug one in; if it is, see udev-rules/ for access)"
        fail(f"{err}{hint}")
    except FidoError as err:
        fail(str(err))


def _ask_pin(pin_stdin: bool) -> Callable[[], str | None]:
    """The PIN, when the key asks: a hidden prompt at a terminal, a line of stdin with --pin-stdin."""

    def ask() -> str | None:
        if pin_stdin:
            return sys.stdin.readline().rstrip("\r\n") or None
        if not sys.stdin.isatty():
            return None
        return str(click.prompt("PIN of the security key", hide_input=True, err=True))

    return ask


def _say(message: str) -> None:
    err_console.print(f"{message} …", markup=False)  # stderr: --json output stays clean


def _enroll(rt: Runtime, device: CtapDevice, *, username: str, description: str, pin_stdin: bool) -> Token:
    """begin registration → the key's credential → complete registration; any failure removes the pending
    token again (and is re-raised)."""
    session = current_session()
    user = users.get_user(session, username=username)
    enrollment = webauthn.begin_registration(
        session, rt, user=user, description=description, actor=CONSOLE_ACTOR
    )
    interaction = console.ConsoleInteraction(prompt=_say, ask_pin=_ask_pin(pin_stdin))
    try:
        credential = console.register(
            device, rt.settings.public_origin, enrollment.options, interaction=interaction
        )
        return webauthn.complete_registration(
            session, rt, token=enrollment.token, credential=credential, actor=CONSOLE_ACTOR
        )
    except (FidoError, TokenwardError, KeyboardInterrupt):  # Ctrl-C while the key waits for a touch
        session.rollback()
        pending = tokens.get_token(session, token_id=enrollment.token.id)
        if pending.state == TokenState.PENDING:
            tokens.delete_token(session, rt, token=pending, actor=CONSOLE_ACTOR)
        raise


def _failure(err: FidoError) -> str:
    if isinstance(err, PinRequired):
        return f"{err}: run at a terminal, or give --pin-stdin"
    return str(err)


@key_group.command("enroll")
@click.option("--user", "username", required=True, metavar="NAME", help="The user who gets the key.")
@click.option("--description", default="", metavar="TEXT", help="A name for the key, e.g. 'blue YubiKey'.")
@click.option("--device", metavar="PATH", help="This USB key (e.g. /dev/hidraw3) instead of the first one.")
@click.option("--emulator", is_flag=True, help="Enroll the software authenticator (tests, demonstrations).")
@click.option(
    "--emulator-state",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The software authenticator's state file (holds its private keys): reuse it to sign in later.",
)
@click.option("--pin-stdin", is_flag=True, help="Read the key's PIN from standard input if it asks.")
@click.option("--json", "as_json", is_flag=True, help="Print the enrolled token as JSON.")
@expected_errors
def enroll(
    username: str,
    description: str,
    device: str | None,
    emulator: bool,
    emulator_state: Path | None,
    pin_stdin: bool,
    as_json: bool,
) -> None:
    """Enroll a FIDO2 security key for user NAME over USB: touch the key when asked."""
    authenticator = _open_device(emulator, emulator_state, device)
    try:
        with service_context() as rt:
            token = _enroll(
                rt, authenticator, username=username, description=description, pin_stdin=pin_stdin
            )
            view = tokens.token_view(rt, token, owner=username)
    except FidoError as err:
        fail(_failure(err))
    finally:
        authenticator.close()
    if as_json:
        print_json({**view, "user": username})
        return
    out.print(f"enrolled security key {token.id} for {username}", markup=False, soft_wrap=True)


def _enrolled(username: str | None) -> list[dict[str, Any]]:
    with service_context() as rt:
        session = current_session()
        if username is not None:
            users.get_user(session, username=username)
        filters = tokens.TokenFilter(username=username, type=TokenType.WEBAUTHN)
        page = tokens.list_all_tokens(session, rt, filters=filters, limit=LIST_LIMIT, offset=0)
        return [{**tokens.token_view(rt, token, owner=owner), "user": owner} for token, owner in page.tokens]


def _attached() -> list[dict[str, Any]]:
    return [
        {
            "path": key.path,
            "vendor_id": f"{key.vendor_id:04x}",
            "product_id": f"{key.product_id:04x}",
            "product": key.product_name,
            "serial": key.serial_number,
        }
        for key in list_security_keys()
    ]


@key_group.command("list")
@click.option("--user", "username", metavar="NAME", help="Only this user's keys.")
@click.option("--attached", is_flag=True, help="The FIDO2 USB devices attached here, not enrolled keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_keys(username: str | None, attached: bool, as_json: bool) -> None:
    """List enrolled security keys (user, id, state, model), or with --attached the USB keys plugged in."""
    if attached and username is not None:
        fail("--attached and --user exclude each other")
    rows = _attached() if attached else _enrolled(username)
    if as_json:
        print_json(rows)
        return
    if attached:
        table = Table("path", "vendor:product", "product", "serial")
        for row in rows:
            vid_pid = f"{row['vendor_id']}:{row['product_id']}"
            table.add_row(row["path"], vid_pid, row["product"] or "-", row["serial"] or "-")
    else:
        table = Table("user", "id", "state", "description", "aaguid")
        for row in rows:
            table.add_row(
                row["user"] or "-", row["id"], row["state"], row["description"] or "-", row.get("aaguid", "-")
            )
    out.print(table)
