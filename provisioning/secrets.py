"""`tokenward secrets rotate-key`: re-seal every stored secret with the current encryption key."""

from __future__ import annotations

import time
from dataclasses import asdict

import click

from provisioning.console import CONSOLE_ACTOR, expected_errors, fail, out, print_json, service_context
from server.db import current_session
from server.services.audit import record_event
from server.services.key_rotation import RotationCounts, rotate_all

DEFAULT_BATCH_SIZE = 500  # rows per transaction: short enough not to hold the write lock noticeably


@click.group("secrets")
def secrets_group() -> None:
    """Secrets at rest: re-encrypt them with a new encryption key."""


@secrets_group.command("rotate-key")
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Rows re-encrypted per transaction.",
)
@click.option(
    "--pause",
    "pause_seconds",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds to wait between batches, to spare a busy database.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@expected_errors
def rotate_key(batch_size: int, pause_seconds: float, as_json: bool) -> None:
    """Re-encrypt every token seed, signing key and RADIUS secret with TOKENWARD_ENCRYPTION_KEY.

    Run it after making the new key current and the old one an old key (TOKENWARD_OLD_ENCRYPTION_KEYS) on
    every node; the servers keep running. Interrupted, it is simply run again: what is done is skipped.
    """

    def between_batches(_table: str, _counts: RotationCounts) -> None:
        if pause_seconds:
            time.sleep(pause_seconds)

    with service_context() as rt:
        session = current_session()
        report = rotate_all(session, rt.box, batch_size=batch_size, between_batches=between_batches)
        total = report.total
        record_event(
            session,
            actor=CONSOLE_ACTOR,
            action="secrets.rotate_key",
            result="success" if total.complete else "failure",
            reason=""
            if total.complete
            else f"unreadable={total.unreadable} changed={total.changed_meanwhile}",
            target=f"encryption-key:{rt.box.current_key_id.hex()}",  # the key's public id
            now=rt.now(),
        )
        session.commit()
    if as_json:
        print_json({"tables": {name: asdict(c) for name, c in report.by_table.items()}, **asdict(total)})
    else:
        for name, counts in report.by_table.items():
            out.print(f"{name}: {counts.rotated} re-encrypted, {counts.already_current} already current")
    if total.unreadable:
        fail(
            f"{total.unreadable} secrets open with no configured key: add the key that sealed them to "
            "TOKENWARD_OLD_ENCRYPTION_KEYS and run again"
        )
    if total.changed_meanwhile:
        fail(f"{total.changed_meanwhile} secrets changed while being re-encrypted: run again to finish")
