"""`tokenward fob …`: emulate a fob, list attached fobs, provision one, read a response, wipe one.

Only the console reaches into a fob's port (`SerialFob`); the server sees fobs as tokens.
"""

from __future__ import annotations

import functools
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from devices.fob.discovery import DEFAULT_SYMLINK_DIR, AttachedFob, attached_fobs
from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator
from devices.fob.errors import FobError, FobErrorCode, FobRefused
from devices.ocra import DEFAULT_SUITE, time_step_at
from provisioning.console import (
    CONSOLE_ACTOR,
    err_console,
    expected_errors,
    fail,
    out,
    print_json,
    service_context,
    settings_from_env,
    wants_progress,
)
from server.token_kinds import TokenState, TokenType

if TYPE_CHECKING:
    from provisioning.fob_provision import Provisioned, StepReporter

# The database layer and the services are imported inside the commands that use them: `fob respond` and
# `fob emulate` only talk to a device, and should start without them.

F = TypeVar("F", bound=Callable[..., Any])

# `fob emulate` keeps each emulated fob's "flash" here, under the instance directory, unless --state says.
EMULATOR_STATE_DIR = "fob-emulators"


@click.group("fob")
def fob_group() -> None:
    """Hardware fobs: OCRA challenge-response devices on a serial port (or an emulated one)."""


def fob_errors(command: F) -> F:
    """A fob that fails (unplugged, silent, refusing) is a one-line failure, like the services' errors."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FobError as err:
            fail(str(err))

    return expected_errors(run)  # type: ignore[return-value]


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the emulator, also when started in the background (which ignores SIGINT)."""

    def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


@fob_group.command("emulate")
@click.option("--serial", metavar="S", help="Serial number of a new emulated fob (default: random EMU…).")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The fob's state file (its flash); default: <instance>/fob-emulators/<serial>.json.",
)
def emulate(serial: str | None, state_file: Path | None) -> None:
    """Serve an emulated fob on a pseudo-terminal until stopped (Ctrl-C or SIGTERM).

    The first line printed is the port to use, e.g. `tokenward fob provision --port /dev/pts/3 …`."""
    if state_file is None:
        serial = serial or f"EMU{secrets.token_hex(4).upper()}"
        directory = settings_from_env().instance_dir / EMULATOR_STATE_DIR
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        state_file = directory / f"{serial}.json"
    try:
        emulator = FobEmulator(state_file, serial=serial)
    except (ValueError, OSError) as err:
        fail(f"{state_file}: {err}")
    _stop_on_signals()
    emulator.start()
    click.echo(emulator.port)
    sys.stdout.flush()
    state = "provisioned" if emulator.state.secret is not None else "blank"
    err_console.print(
        f"emulated fob {emulator.serial} ({state}) on {emulator.port}, state in {state_file}; "
        "Ctrl-C stops it",
        markup=False,
        soft_wrap=True,
    )
    emulator.serve_forever()


def _describe(attached: AttachedFob) -> dict[str, Any]:
    view: dict[str, Any] = {"port": attached.port, "device": attached.device, "serial": attached.serial}
    try:
        with SerialFob(attached.port) as driver:
            identity = driver.hello()
    except FobError as err:
        return {**view, "state": "unreachable", "problem": str(err)}
    view.update(serial=identity.serial, model=identity.model, firmware=identity.firmware)
    view["state"] = "provisioned" if identity.provisioned else "blank"
    view["suite"] = str(identity.suite) if identity.suite is not None else None
    return view


@fob_group.command("list")
@click.option(
    "--dir",
    "symlink_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SYMLINK_DIR,
    show_default=True,
    help="Where udev's fob-<serial> symlinks are.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@expected_errors
def list_fobs(symlink_dir: Path, as_json: bool) -> None:
    """Attached fobs: port, serial number, provisioned or blank, and the user whose token it is."""
    from server.db import current_session
    from server.services import tokens

    views = [_describe(attached) for attached in attached_fobs(symlink_dir=symlink_dir)]
    with service_context() as rt:
        for view in views:
            view.update(token=None, user=None)
            if view["serial"] is None:
                continue
            filters = tokens.TokenFilter(serial=view["serial"])
            page = tokens.list_all_tokens(current_session(), rt, filters=filters, limit=1, offset=0)
            for token, owner in page.tokens:
                view.update(token={"id": token.id, "state": token.state}, user=owner)
    if as_json:
        print_json(views)
        return
    if not views:
        out.print(f"no fobs attached (none found by USB id or in {symlink_dir})", markup=False)
        return
    table = Table("port", "serial", "state", "suite", "user")
    for view in views:
        state = view["state"] if "problem" not in view else f"unreachable: {view['problem']}"
        suite = view.get("suite") or "-"
        table.add_row(view["port"], view["serial"] or "-", state, suite, view["user"] or "-")
    out.print(table)


@contextmanager
def _step_display(enabled: bool) -> Iterator[StepReporter]:
    """A rich progress display of the provisioning steps, on stderr so that `--json` stays clean."""
    from provisioning.fob_provision import STEPS

    if not enabled:
        yield lambda step: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True, force_terminal=True), transient=True) as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS))

        def show(step: str) -> None:
            bar.update(task, description=step, completed=STEPS.index(step))

        yield show


@fob_group.command("provision")
@click.option("--port", required=True, metavar="PORT", help="The fob's port, e.g. /dev/tokenward/fob-…")
@click.option("--user", "username", required=True, metavar="NAME", help="The user who gets the fob.")
@click.option("--suite", default=DEFAULT_SUITE, show_default=True, help="The OCRA suite (RFC 6287).")
@click.option("--description", default=None, help="Shown in token lists (default: fob <serial>).")
@click.option(
    "--progress/--no-progress",
    "progress",
    default=None,
    help="Show the steps as they go (default: at a terminal, without --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@fob_errors
def provision(
    port: str, username: str, suite: str, description: str | None, progress: bool | None, as_json: bool
) -> None:
    """Write a fresh secret into a blank fob, check that it answers, and store its token: all or nothing."""
    from provisioning.fob_provision import ProvisionFailed, provision_fob
    from server.db import current_session

    show = wants_progress(progress, as_json=as_json)
    with service_context() as rt, SerialFob(port) as driver, _step_display(show) as report:
        try:
            done = provision_fob(
                driver,
                current_session(),
                rt,
                username=username,
                suite_text=suite,
                description=description,
                report=report,
            )
        except ProvisionFailed as err:
            fail(str(err))
    _print_provisioned(done, as_json=as_json)


def _print_provisioned(done: Provisioned, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "serial": done.serial,
                "user": done.username,
                "suite": done.suite,
                "token_id": done.token_id,
                "port": done.port,
                "counter": done.counter,
            }
        )
        return
    out.print(
        f"provisioned fob {done.serial} ({done.suite}) for {done.username}: token {done.token_id}",
        markup=False,
        soft_wrap=True,
    )


@fob_group.command("respond")
@click.option("--port", required=True, metavar="PORT", help="The fob's serial port.")
@click.argument("challenge")
@click.option("--counter", type=click.IntRange(0), help="Counter suites: answer at this counter value.")
@click.option(
    "--time",
    "time_step",
    type=click.IntRange(0),
    help="Time suites: the time step to answer for (default: now, by this computer's clock).",
)
@fob_errors
def respond(port: str, challenge: str, counter: int | None, time_step: int | None) -> None:
    """Print the fob's response to CHALLENGE (what a user types at login)."""
    with SerialFob(port) as driver:
        suite = driver.hello().suite
        if suite is None:
            fail(f"the fob is blank: provision it with `tokenward fob provision --port {port} --user NAME`")
        if suite.time_step is not None and time_step is None:
            time_step = time_step_at(suite, time.time())
        try:
            response = driver.respond(challenge, counter=counter, time_step=time_step)
        except ValueError:
            fail("the challenge must be 1 to 64 letters and digits")
        except FobRefused as err:
            if err.code is not FobErrorCode.BAD_INPUT:
                raise
            fail(f"the fob refused the input: it does not fit the suite {suite}")
    click.echo(response)


@fob_group.command("wipe")
@click.option("--port", required=True, metavar="PORT", help="The fob's serial port.")
@click.option("--yes", is_flag=True, help="Really erase the fob's secret (it cannot be recovered).")
@fob_errors
def wipe(port: str, yes: bool) -> None:
    """Erase the fob's secret; the token that used it (if any) is disabled."""
    from server.db import current_session
    from server.services import fob, tokens

    if not yes:
        fail("wiping erases the fob's secret for good; add --yes to do it")
    with SerialFob(port) as driver:
        serial = driver.hello().serial
        driver.wipe(serial)
    message = f"wiped fob {serial}"
    with service_context() as rt:
        session = current_session()
        token = fob.fob_token_by_serial(session, serial=serial)
        if token is not None and token.type == TokenType.FOB and token.state == TokenState.ACTIVE:
            tokens.set_token_enabled(session, rt, token=token, enabled=False, actor=CONSOLE_ACTOR)
            message += f"; its token {token.id} was disabled"
        elif token is not None and token.type == TokenType.FOB:
            message += f"; its token {token.id} was already {token.state}"
    out.print(message, markup=False, soft_wrap=True)
