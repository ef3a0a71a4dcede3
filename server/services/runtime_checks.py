"""Readiness checks of the backing services."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


def database_reachable(session: Session) -> None:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        log.warning("readiness check: database unreachable (%s)", type(err).__name__)
        session.rollback()
        raise DatabaseUnavailable() from err
