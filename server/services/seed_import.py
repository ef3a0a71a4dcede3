"""Seed-file import: every token of a file in one database transaction, or none of them.

Parsing lives in `seed_files` (pure); this module checks serials against the database, seals each key with
its token's id as associated data, inserts the tokens (active; assigned to a user or left for
`assign_token`), writes one `token.import` audit event and commits once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import TokenwardError
from server.models import Token, User, new_id
from server.services.account_state import factor_activated
from server.services.audit import Actor, record_event, record_failure
from server.services.runtime import Runtime
from server.services.seed_files import (
    Progress,
    SeedDecryptionFailed,
    SeedFileInvalid,
    SeedKeyRequired,
    SeedRecord,
    parse_seed_file,
)
from server.services.token_secrets import seal_secret
from server.services.users import get_user
from server.token_kinds import TokenState

__all__ = [
    "ImportProgress",
    "ImportResult",
    "SeedDecryptionFailed",
    "SeedFileInvalid",
    "SeedKeyRequired",
    "SeedSerialTaken",
    "import_seed_file",
    "import_seeds",
]

log = logging.getLogger(__name__)

# Rows per flush: progress moves in steps this size, all inside the one transaction.
INSERT_BATCH = 1000
# Serials per `IN (…)` lookup, well under SQLite's bound-parameter limit.
LOOKUP_BATCH = 500

# (phase, done, total) with phase "reading" (parsing the file) or "importing" (inserting tokens).
ImportProgress = Callable[[str, int, int], None]


class SeedSerialTaken(SeedFileInvalid):
    code, status, title = "seed_serial_taken", 409, "A serial in the seed file is already in use"


@dataclass(frozen=True)
class ImportResult:
    source: str
    count: int
    by_type: Mapping[str, int]
    username: str | None
    serials: tuple[str, ...]


def import_seed_file(
    session: Session,
    rt: Runtime,
    *,
    data: bytes,
    source: str,
    format: str | None = None,
    psk: bytes | None = None,
    passphrase: str | None = None,
    username: str | None = None,
    actor: Actor,
    progress: ImportProgress | None = None,
) -> ImportResult:
    """Parses a PSKC or CSV seed file and imports all its tokens. A failure (other than a missing key, which
    is a question back to the caller) is audited; nothing of the file is stored."""
    try:
        if username is not None:
            get_user(session, username=username)  # a typo fails before a long parse
        records = parse_seed_file(
            data,
            format=format,
            psk=psk,
            passphrase=passphrase,
            progress=partial(progress, "reading") if progress else None,
        )
        return import_seeds(
            session,
            rt,
            records=records,
            source=source,
            username=username,
            actor=actor,
            progress=partial(progress, "importing") if progress else None,
        )
    except SeedKeyRequired:
        raise
    except TokenwardError as err:
        session.rollback()
        record_failure(
            session,
            actor=actor,
            action="token.import",
            now=rt.now(),
            target=source,
            reason=err.code,
        )
        raise


def import_seeds(
    session: Session,
    rt: Runtime,
    *,
    records: Sequence[SeedRecord],
    source: str,
    username: str | None = None,
    actor: Actor,
    progress: Progress | None = None,
) -> ImportResult:
    """Inserts every record as an active token in one transaction and commits once; on any problem nothing
    is stored and `SeedFileInvalid` (or `SeedSerialTaken`) names the entry."""
    if not records:
        raise SeedFileInvalid("the file holds no tokens")
    user = get_user(session, username=username) if username is not None else None
    _check_in_file(rt, records)
    _check_not_taken(session, records)
    now = rt.now()
    for start in range(0, len(records), INSERT_BATCH):
        batch = records[start : start + INSERT_BATCH]
        session.add_all([_new_token(rt, record, user=user, now=now) for record in batch])
        try:
            session.flush()
        except IntegrityError as err:
            session.rollback()
            raise SeedSerialTaken(
                "a serial in the file was taken while importing; nothing was imported"
            ) from err
        if progress is not None:
            progress(start + len(batch), len(records))
    factor_activated(session, rt, user_id=user.id if user else None)
    target = f"{source}: {len(records)} tokens" + (f" for {user.username}" if user else "")
    record_event(session, actor=actor, action="token.import", result="success", now=now, target=target)
    session.commit()
    log.info("imported %d tokens from %s", len(records), source)
    return ImportResult(
        source=source,
        count=len(records),
        by_type=dict(Counter(record.type for record in records)),
        username=user.username if user else None,
        serials=tuple(record.serial for record in records),
    )


def _check_in_file(rt: Runtime, records: Sequence[SeedRecord]) -> None:
    first_seen: dict[str, str] = {}
    limit = rt.settings.max_drift_steps
    for record in records:
        if record.serial in first_seen:
            raise SeedFileInvalid(
                f"serial {record.serial} appears twice: {first_seen[record.serial]} and {record.origin}"
            )
        first_seen[record.serial] = record.origin
        if abs(record.drift_steps) > limit:
            raise SeedFileInvalid(
                f"{record.origin} (serial {record.serial}): a clock drift of {record.drift_steps} steps is "
                f"more than the {limit} allowed"
            )


def _check_not_taken(session: Session, records: Sequence[SeedRecord]) -> None:
    serials = [record.serial for record in records]
    for start in range(0, len(serials), LOOKUP_BATCH):
        chunk = serials[start : start + LOOKUP_BATCH]
        taken = set(session.scalars(select(Token.serial).where(Token.serial.in_(chunk))))
        if taken:
            record = next(record for record in records[start:] if record.serial in taken)
            more = f" (and {len(taken) - 1} more in this part of the file)" if len(taken) > 1 else ""
            raise SeedSerialTaken(f"{record.origin}: serial {record.serial} is already in the database{more}")


def _new_token(rt: Runtime, record: SeedRecord, *, user: User | None, now: float) -> Token:
    token = Token(
        id=new_id(),  # set before sealing: the id is the seal's associated data
        user_id=user.id if user else None,
        type=record.type,
        state=TokenState.ACTIVE,
        description=record.description,
        serial=record.serial,
        algorithm=record.algorithm,
        digits=record.digits,
        period=record.period,
        counter=record.counter,
        drift_steps=record.drift_steps,
        fail_count=0,
        ocra_suite=record.ocra_suite,
        created_at=now,
        activated_at=now,
    )
    seal_secret(rt, token, record.key)
    return token
