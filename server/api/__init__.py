"""The JSON API (`/api/v1`), JWKS, health and metrics. Views translate HTTP to service calls, nothing more."""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from server.api import admin, clients, health, openapi, passwords, recovery, sessions, tokens, wellknown
from server.db import current_session
from server.http.context import request_id, runtime
from server.http.outages import register_outage_handlers
from server.http.problems import register_problem_handlers
from server.services.housekeeping import Sweeper, purge_expired

log = logging.getLogger(__name__)

BLUEPRINTS = (
    sessions.bp,
    tokens.bp,
    recovery.bp,
    passwords.bp,
    admin.bp,
    clients.bp,
    wellknown.bp,
    health.bp,
    openapi.bp,
)


def _finish(response: Response) -> Response:
    response.headers["X-Request-Id"] = request_id()
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def register_api(app: Flask) -> None:
    register_problem_handlers(app)
    register_outage_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.after_request(_finish)
    sweeper = Sweeper()

    @app.teardown_request
    def _sweep(_error: BaseException | None) -> None:
        rt = runtime()
        if not sweeper.due(rt.now()):
            return
        try:
            purge_expired(current_session(), rt)
        except Exception:  # housekeeping must never break a request; the next sweep tries again
            current_session().rollback()
            log.exception("housekeeping sweep failed")
