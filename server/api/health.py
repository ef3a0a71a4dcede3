"""Health for load balancers and orchestrators, and Prometheus metrics (`/metrics`).

`/healthz` is liveness: the process answers HTTP, nothing else is asked (a database outage must not get
every node restarted). `/readyz` is readiness: the database answers, and so does the rate-limit store when it
is a separate service (Redis); each check is bounded by a short timeout, so the answer comes in bounded time
and a sick node is taken out of rotation rather than sent users nobody can sign in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app
from flask_limiter import Limiter
from prometheus_client import CONTENT_TYPE_LATEST

from server.db import current_session
from server.db_timeouts import shorter_database_waits
from server.errors import RateLimitStoreUnavailable
from server.http import metrics
from server.http.context import runtime
from server.http.contract import operation
from server.http.responses import Health, Readiness
from server.services.runtime_checks import database_reachable

bp = Blueprint("health", __name__)

# The longest a readiness check waits for the database's answer (connecting is bounded by
# TOKENWARD_DATABASE_CONNECT_TIMEOUT; Redis by TOKENWARD_RATELIMIT_STORAGE_TIMEOUT).
READINESS_ANSWER_SECONDS = 2.0
# Rate-limit storages that are not a service of their own: memory, or the database checked already.
_NOT_A_SERVICE = ("memory", "database")


@operation(
    bp,
    "/healthz",
    "GET",
    summary="Liveness: the process answers (no dependency is checked)",
    responses={200: "ok"},
    model=Health,
    uses_database=False,
)
def healthz() -> Any:
    return {"status": "ok"}


@operation(
    bp,
    "/readyz",
    "GET",
    summary="Readiness: the database and the shared rate-limit store answer",
    responses={
        200: "ready",
        503: "The database (database_unavailable) or the rate-limit store "
        "(rate_limit_store_unavailable) is not reachable",
    },
    model=Readiness,
)
def readyz() -> Any:
    with shorter_database_waits(READINESS_ANSWER_SECONDS):
        database_reachable(current_session())
    for limiter in _shared_limiters():
        if not limiter.storage.check():
            raise RateLimitStoreUnavailable()
    return {"status": "ready"}


def _shared_limiters() -> list[Limiter]:
    """The limiters, when their counts live in a service of their own (Redis)."""
    settings = runtime().settings
    if not settings.rate_limits.enabled or settings.ratelimit_storage.split(":", 1)[0] in _NOT_A_SERVICE:
        return []
    return list(current_app.extensions.get("limiter", set()))


@operation(
    bp,
    "/metrics",
    "GET",
    summary="Prometheus metrics",
    responses={200: "text exposition format"},
    uses_database=False,
    response_media="text/plain",
)
def prometheus_metrics() -> Any:
    return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
