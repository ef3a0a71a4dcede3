"""Liveness for load balancers (`/healthz`, database reachable) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.api import metrics
from server.api.contract import operation
from server.api.responses import Health
from server.db import current_session
from server.services.runtime_checks import database_reachable

bp = Blueprint("health", __name__)


@operation(
    bp,
    "/healthz",
    "GET",
    summary="Health: the database answers",
    responses={200: "ok", 503: "The database is not reachable"},
    model=Health,
)
def healthz() -> Any:
    database_reachable(current_session())
    return {"status": "ok"}


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
