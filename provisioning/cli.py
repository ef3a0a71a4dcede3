"""The `tokenward` console: one command family per module, imported only when one of its commands runs.

A family's module brings the services, the database layer and device drivers with it, which `tokenward
--help` has no use for; so the group knows each family by name, import path and one-line summary (shown in
`tokenward --help`), and imports the module when the family is invoked or asked for its own help.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from server.config_file import CONFIG_VARIABLE


def _use_config_file(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """`--config FILE` is TOKENWARD_CONFIG for this run (and the server's workers): Settings reads both."""
    if value is not None:
        os.environ[CONFIG_VARIABLE] = str(value.resolve())


def config_option() -> click.Option:
    return click.Option(
        ["--config"],
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        expose_value=False,
        is_eager=True,
        callback=_use_config_file,
        metavar="FILE",
        help=f"TOML settings file (as {CONFIG_VARIABLE}); TOKENWARD_* environment variables win over it.",
    )


def add_config_option(command: click.Command) -> None:
    """Gives `command` and, for a group, each of its subcommands a `--config FILE` option."""
    if not any(param.name == "config" for param in command.params):
        command.params.append(config_option())
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            add_config_option(subcommand)


@dataclass(frozen=True)
class LazyCommand:
    target: str  # "package.module:attribute", the click command or group
    summary: str  # the command's one-line help, for the group's listing


class LazyGroup(click.Group):
    """A click group whose subcommands are registered by import path and imported on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = {}

    def lazy_command(self, name: str, target: str, summary: str) -> None:
        """Registers the command `target` ("module:attribute") as `name`; `summary` is the first sentence
        of its help."""
        self.lazy_commands[name] = LazyCommand(target, summary)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = self._load(cmd_name)
        return command

    def _load(self, name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[name].target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[name].target} is not a click command")
        add_config_option(command)
        self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of click's own `format_commands`, with the registered summary for a family that
        is not imported yet (so that `--help` imports nothing)."""
        rows = []
        for name in self.list_commands(ctx):
            command = super().get_command(ctx, name)
            if command is None:
                command = click.Command(name, help=self.lazy_commands[name].summary)
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tokenward")
def main() -> None:
    """Tokenward: second-factor authentication server and admin console.

    Settings come from TOKENWARD_* environment variables and, with --config FILE (on any command) or
    TOKENWARD_CONFIG, from a TOML file of the same settings in lower case (the environment wins).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # At exit, what the command loaded (the app, SQLAlchemy) is left to the operating system instead of
    # being collected object by object: a third of a second of every command. (Its database connections
    # are closed by the command itself.)
    atexit.unregister(gc.freeze)  # once, however often the group runs in one process
    atexit.register(gc.freeze)


add_config_option(main)
main.lazy_command("serve", "provisioning.serve:serve", "Run the production server (gunicorn).")
main.lazy_command("user", "provisioning.users:user_group", "Manage users.")
main.lazy_command("keys", "provisioning.keys:keys_group", "Manage JWT signing keys.")
main.lazy_command(
    "token",
    "provisioning.tokens:token_group",
    "Import seed files, list tokens, assign them to users and delete them.",
)
main.lazy_command(
    "fob",
    "provisioning.fob:fob_group",
    "Hardware fobs: OCRA challenge-response devices on a serial port (or an emulated one).",
)
main.lazy_command(
    "key",
    "provisioning.security_keys:key_group",
    "Users' FIDO2 security keys: enroll one over USB, list them.",
)
main.lazy_command(
    "client",
    "provisioning.clients:client_group",
    "Manage registered clients (applications that call one-step verify; OpenID Connect relying parties).",
)
main.lazy_command(
    "radius",
    "provisioning.radius:radius_group",
    "RADIUS front end: VPNs, network gear and PAM logins ask Tokenward over RADIUS (PAP).",
)
main.lazy_command(
    "secrets",
    "provisioning.secrets:secrets_group",
    "Secrets at rest: re-encrypt them with a new encryption key.",
)
main.lazy_command(
    "backup",
    "provisioning.backup:backup",
    "Write a consistent copy of the SQLite database to FILE, also while the server runs.",
)
main.lazy_command(
    "restore",
    "provisioning.backup:restore",
    "Put a backup made by `tokenward backup` in place of this instance's database.",
)
