"""Re-sealing every stored secret with the current encryption key, in batches, while the server runs.

Each batch is its own transaction: its rows are read under a lock (`FOR UPDATE` on PostgreSQL; SQLite's
transactions take the write lock up front) and each is written back only if its blob is still the one read,
so a concurrent write is never overwritten. Rows already sealed with the current key are skipped, which
makes a run that was interrupted resumable by simply running it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db import rows_changed
from server.services.crypto import SecretBox, SecretUnreadable
from server.services.sealed_columns import SEALED_COLUMNS, SealedColumn


@dataclass
class RotationCounts:
    rotated: int = 0  # re-sealed with the current key by this run
    already_current: int = 0  # sealed with the current key before (a resumed run, or written since)
    unreadable: int = 0  # opened with no configured key: left as they are
    changed_meanwhile: int = 0  # written by someone else between read and write (run again to finish)

    def add(self, other: RotationCounts) -> None:
        self.rotated += other.rotated
        self.already_current += other.already_current
        self.unreadable += other.unreadable
        self.changed_meanwhile += other.changed_meanwhile

    @property
    def complete(self) -> bool:
        return self.unreadable == 0 and self.changed_meanwhile == 0


@dataclass
class RotationReport:
    by_table: dict[str, RotationCounts] = field(default_factory=dict)

    @property
    def total(self) -> RotationCounts:
        total = RotationCounts()
        for counts in self.by_table.values():
            total.add(counts)
        return total


def rotate_batch(
    session: Session, box: SecretBox, sealed: SealedColumn, *, after: str | None, batch_size: int
) -> tuple[str | None, RotationCounts]:
    """Re-seals the next `batch_size` rows (by id) after `after`; commits. Returns the last id seen (None
    when the table is done) and what happened to the rows."""
    rows_table, row_id, blob = sealed.clause()
    query = select(row_id, blob).where(blob.is_not(None)).order_by(row_id).limit(batch_size)
    if after is not None:
        query = query.where(row_id > after)
    rows = session.execute(query.with_for_update()).all()
    counts = RotationCounts()
    for current_id, current_blob in rows:
        if box.sealed_with_current_key(current_blob):
            counts.already_current += 1
            continue
        try:
            resealed = box.reseal(current_blob, associated_data=sealed.associated_data(current_id))
        except SecretUnreadable:
            counts.unreadable += 1
            continue
        written = session.execute(
            update(rows_table)
            .where(row_id == current_id, blob == current_blob)
            .values({sealed.blob_column: resealed})
        )
        if rows_changed(written) == 1:
            counts.rotated += 1
        else:
            counts.changed_meanwhile += 1
    session.commit()
    return (rows[-1][0] if len(rows) == batch_size else None), counts


def rotate_all(
    session: Session,
    box: SecretBox,
    *,
    batch_size: int,
    between_batches: Callable[[str, RotationCounts], None] = lambda _table, _counts: None,
) -> RotationReport:
    """Every sealed column, batch after batch; `between_batches` runs after each batch that has a next one
    (with the table and the batch's counts: progress, pauses)."""
    report = RotationReport()
    for sealed in SEALED_COLUMNS:
        counts = report.by_table.setdefault(sealed.table_name, RotationCounts())
        after: str | None = None
        while True:
            after, batch = rotate_batch(session, box, sealed, after=after, batch_size=batch_size)
            counts.add(batch)
            if after is None:
                break
            between_batches(sealed.table_name, batch)
    return report
