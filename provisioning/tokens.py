"""`tokenward token …`: import seed files (PSKC, OATH CSV), list tokens, assign imported tokens to users,
delete tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from provisioning.console import (
    CONSOLE_ACTOR,
    expected_errors,
    fail,
    out,
    print_json,
    service_context,
    wants_progress,
)
from server.db import current_session
from server.services import seed_import, tokens, users
from server.services.seed_files import FORMATS, MAX_SEED_FILE_BYTES
from server.services.seed_import import ImportProgress, ImportResult, SeedFileInvalid, SeedKeyRequired

PHASES = ("reading", "importing")  # the service's progress phases, one bar each


@click.group("token")
def token_group() -> None:
    """Import seed files, list tokens, assign them to users and delete them."""


def _read_seed_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_SEED_FILE_BYTES:
            fail(f"{path}: larger than {MAX_SEED_FILE_BYTES // 2**20} MiB; split the file")
        return path.read_bytes()
    except OSError as err:
        fail(f"{path}: {err.strerror or 'cannot be read'}")


def _parse_psk(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        fail("--psk must be the pre-shared key in hexadecimal")


def _read_passphrase(given: str | None, from_stdin: bool) -> str | None:
    if from_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
        if not passphrase:
            fail("no passphrase on standard input")
        return passphrase
    return given


@contextmanager
def _progress_display(enabled: bool) -> Iterator[ImportProgress | None]:
    """A rich progress bar (on stderr, so `--json` output stays clean) fed by the service's callbacks."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True, force_terminal=True), transient=True) as bar:
        task_ids = {phase: bar.add_task(phase, total=None) for phase in PHASES}

        def show(phase: str, done: int, total: int) -> None:
            bar.update(task_ids[phase], completed=done, total=total)

        yield show


def _run_import(path: Path, data: bytes, options: dict[str, Any], *, show_progress: bool) -> ImportResult:
    with service_context() as rt, _progress_display(show_progress) as progress:
        return seed_import.import_seed_file(
            current_session(),
            rt,
            data=data,
            source=path.name,
            actor=CONSOLE_ACTOR,
            progress=progress,
            **options,
        )


def _summary(result: ImportResult) -> str:
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result.by_type.items()))
    owner = (
        f"assigned to {result.username}"
        if result.username
        else "unassigned (tokenward token assign SERIAL --user NAME)"
    )
    return f"imported {result.count} tokens from {result.source} ({kinds}), {owner}"


@token_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "user", metavar="NAME", help="Assign every token of the file to this user.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: detected (XML is PSKC).")
@click.option("--psk", metavar="HEX", help="The pre-shared key of an encrypted PSKC file.")
@click.option("--passphrase", metavar="TEXT", help="The passphrase of a PBKDF2-encrypted PSKC file.")
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from standard input.")
@click.option(
    "--progress/--no-progress",
    "progress",
    default=None,
    help="Show a progress bar (default: at a terminal, without --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@expected_errors
def import_tokens(
    file: Path,
    user: str | None,
    fmt: str | None,
    psk: str | None,
    passphrase: str | None,
    passphrase_stdin: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Import the tokens of a PSKC (RFC 6030) or OATH CSV seed file: all of them, or none."""
    if sum((psk is not None, passphrase is not None, passphrase_stdin)) > 1:
        fail("give at most one of --psk, --passphrase and --passphrase-stdin")
    data = _read_seed_file(file)
    options: dict[str, Any] = {
        "format": fmt,
        "psk": _parse_psk(psk),
        "passphrase": _read_passphrase(passphrase, passphrase_stdin),
        "username": user,
    }
    show_progress = wants_progress(progress, as_json=as_json)
    try:
        result = _import_asking_for_passphrase(file, data, options, show_progress=show_progress)
    except SeedFileInvalid as err:
        fail(f"{file.name}: {err.detail}; nothing was imported")
    if as_json:
        print_json(
            {
                "imported": result.count,
                "source": result.source,
                "by_type": dict(result.by_type),
                "user": result.username,
                "serials": list(result.serials),
            }
        )
        return
    out.print(_summary(result), markup=False, soft_wrap=True)


def _import_asking_for_passphrase(
    path: Path, data: bytes, options: dict[str, Any], *, show_progress: bool
) -> ImportResult:
    """Imports; a passphrase-encrypted file met without a passphrase is asked for it at a terminal."""
    try:
        return _run_import(path, data, options, show_progress=show_progress)
    except SeedKeyRequired as err:
        by_passphrase = err.extra.get("protection") == "passphrase"
        if not by_passphrase or not sys.stdin.isatty():
            flags = "--passphrase or --passphrase-stdin" if by_passphrase else "--psk HEX"
            fail(f"{path.name}: the file is encrypted; give {flags}")
    passphrase = str(click.prompt("Passphrase", hide_input=True, err=True))
    return _run_import(path, data, {**options, "passphrase": passphrase}, show_progress=show_progress)


LIST_LIMIT = 1_000_000


@token_group.command("list")
@click.option("--unassigned", is_flag=True, help="Only tokens that belong to no user (e.g. just imported).")
@click.option("--user", "user", metavar="NAME", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_tokens(unassigned: bool, user: str | None, as_json: bool) -> None:
    """List tokens: serial, type, state and owner (never a secret)."""
    if unassigned and user is not None:
        fail("--unassigned and --user exclude each other")
    with service_context() as rt:
        session = current_session()
        if user is not None:
            users.get_user(session, username=user)
        filters = tokens.TokenFilter(username=user, unassigned=True if unassigned else None)
        page = tokens.list_all_tokens(session, rt, filters=filters, limit=LIST_LIMIT, offset=0)
        views = [tokens.token_view(rt, token, owner=owner, admin=True) for token, owner in page.tokens]
    if as_json:
        print_json(views)
        return
    table = Table("id", "serial", "type", "state", "user")
    for view in views:
        state = "locked" if view["locked"] else view["state"]
        table.add_row(view["id"], view.get("serial", "-"), view["type"], state, view["user"] or "-")
    out.print(table)


@token_group.command("delete")
@click.argument("token_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Delete without asking (needed when not at a terminal).")
@expected_errors
def delete(token_id: str, yes: bool) -> None:
    """Delete the token ID (as `token list` shows it); its owner can no longer sign in with it."""
    if not yes:
        if not sys.stdin.isatty():
            fail("give --yes to delete without a question")
        click.confirm(f"Delete token {token_id}?", abort=True, err=True)
    with service_context() as rt:
        session = current_session()
        token = tokens.get_token(session, token_id=token_id)
        tokens.delete_token(session, rt, token=token, actor=CONSOLE_ACTOR)
    out.print(f"deleted token {token_id}", markup=False)


@token_group.command("assign")
@click.argument("serial")
@click.option("--user", "user", required=True, metavar="NAME", help="The user who gets the token.")
@expected_errors
def assign(serial: str, user: str) -> None:
    """Give the unassigned token SERIAL (e.g. an imported one) to user NAME."""
    with service_context() as rt:
        session = current_session()
        owner = users.get_user(session, username=user)
        filters = tokens.TokenFilter(serial=serial)
        page = tokens.list_all_tokens(session, rt, filters=filters, limit=1, offset=0)
        if not page.tokens:
            fail(f"no token with serial {serial}")
        token, _ = page.tokens[0]
        tokens.assign_token(session, rt, token=token, user=owner, actor=CONSOLE_ACTOR)
    out.print(f"assigned {serial} to {user}", markup=False, soft_wrap=True)
