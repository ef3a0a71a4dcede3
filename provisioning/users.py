"""`tokenward user …`: add, list, disable, enable, delete users, reset passwords; sync from the directory."""

from __future__ import annotations

import dataclasses
import sys

import click
from rich.table import Table

from provisioning.console import CONSOLE_ACTOR, expected_errors, fail, out, print_json, service_context
from server.db import current_session
from server.services import directory_users, password_changes, recovery_codes, users


@click.group("user")
def user_group() -> None:
    """Manage users."""


def _read_password(password_stdin: bool, no_password: bool) -> str | None:
    if no_password:
        return None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on standard input")
        return password
    if not sys.stdin.isatty():
        fail("give --password-stdin (or --no-password) when not at a terminal")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@click.option("--no-password", is_flag=True, help="No password: the user signs in with a token alone.")
@expected_errors
def add_user(name: str, admin: bool, password_stdin: bool, no_password: bool) -> None:
    """Create user NAME (prompts for a password unless told otherwise)."""
    if password_stdin and no_password:
        fail("--password-stdin and --no-password exclude each other")
    password = _read_password(password_stdin, no_password)
    with service_context(create=True) as rt:  # the first user of a new instance creates its database
        user = users.create_user(
            current_session(),
            rt,
            username=name,
            password=password,
            role="admin" if admin else "user",
            actor=CONSOLE_ACTOR,
        )
        out.print(f"created {user.role} {user.username}", markup=False)


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_users(as_json: bool) -> None:
    """List users."""
    with service_context():
        page = users.list_users(current_session(), limit=100_000)
        views = [users.user_view(user) for user in page.users]
    if as_json:
        print_json(views)
        return
    table = Table("user", "role", "state")
    for view in views:
        table.add_row(view["username"], view["role"], "disabled" if view["disabled"] else "active")
    out.print(table)


def _set_disabled(name: str, disabled: bool) -> None:
    with service_context() as rt:
        users.set_disabled(current_session(), rt, username=name, disabled=disabled, actor=CONSOLE_ACTOR)
    out.print(f"{'disabled' if disabled else 'enabled'} {name}", markup=False)


@user_group.command("disable")
@click.argument("name")
@expected_errors
def disable_user(name: str) -> None:
    """Disable user NAME and revoke their sessions."""
    _set_disabled(name, True)


@user_group.command("enable")
@click.argument("name")
@expected_errors
def enable_user(name: str) -> None:
    """Enable a disabled user NAME."""
    _set_disabled(name, False)


@user_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking (needed when not at a terminal).")
@expected_errors
def delete_user(name: str, yes: bool) -> None:
    """Delete user NAME with their tokens and sessions (the last enabled administrator stays)."""
    if not yes:
        if not sys.stdin.isatty():
            fail("give --yes to delete without a question")
        click.confirm(f"Delete {name} and their tokens?", abort=True, err=True)
    with service_context() as rt:
        users.delete_user(current_session(), rt, username=name, actor=CONSOLE_ACTOR)
    out.print(f"deleted {name}", markup=False)


@user_group.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@expected_errors
def set_password(name: str, password_stdin: bool) -> None:
    """Reset the password of local user NAME; their sessions end (directory users: change it there)."""
    password = _read_password(password_stdin, no_password=False) or ""
    with service_context() as rt:
        password_changes.reset_password(
            current_session(), rt, username=name, new_password=password, actor=CONSOLE_ACTOR
        )
    out.print(f"password of {name} reset; their sessions ended", markup=False)


_TTL = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _seconds(text: str) -> int:
    """`90`, `30m`, `1h`, `2d` → seconds."""
    unit = text[-1:].lower()
    number = text[:-1] if unit in _TTL else text
    if not number.isdigit():
        fail(f"--ttl: expected a number of seconds or e.g. 30m, 1h, 2d (got {text!r})")
    return int(number) * _TTL.get(unit, 1)


@user_group.command("temp-code")
@click.argument("name")
@click.option("--ttl", default="1h", show_default=True, help="How long the code is valid (e.g. 30m, 1h, 2d).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def temp_code(name: str, ttl: str, as_json: bool) -> None:
    """Issue a one-login temporary code for NAME (a lost token, or an invitation to enroll); shown once."""
    with service_context() as rt:
        session = current_session()
        issued = recovery_codes.issue_temporary_code(
            session,
            rt,
            user=users.get_user(session, username=name),
            ttl_seconds=_seconds(ttl),
            actor=CONSOLE_ACTOR,
        )
    if as_json:
        print_json({"username": name, "code": issued.code, "expires_at": issued.expires_at})
        return
    out.print(f"temporary code for {name}: {issued.code}", markup=False)
    out.print("It signs in once, with the password, and lets the user enroll a new token.", markup=False)


@user_group.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def sync_users(as_json: bool) -> None:
    """Bring users from the LDAP/AD directory (TOKENWARD_LDAP_URL): add new ones, follow renames, disable
    those who left it or are disabled there. Never re-enables anyone (that is `user enable`)."""
    with service_context() as rt:
        directory = rt.directories.external
        if directory is None:
            fail("no directory is configured (TOKENWARD_LDAP_URL)")
        report = directory_users.sync_directory_users(
            current_session(), rt, directory=directory, actor=CONSOLE_ACTOR
        )
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    for label, names in dataclasses.asdict(report).items():
        out.print(f"{label}: {len(names)}" + (f" ({', '.join(names)})" if names else ""), markup=False)
