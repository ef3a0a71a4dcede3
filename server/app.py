"""The Flask application factory. Nothing runs at import; `create_app()` wires real implementations."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from server.clock import Clock, SystemClock
from server.config import Settings
from server.db import db, engine_options, prepare_engine
from server.directories import open_directories
from server.services import passwords
from server.services.crypto import load_or_create_key, secret_box
from server.services.keys import KeyRing
from server.services.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, http: bool = True) -> Flask:
    """Builds an app for `settings` (default: from the environment). The schema is not touched here:
    `tokenward serve` and the console bring it up to date before serving (see server.migrations).
    `http=False` leaves out the routes: what the console needs (the services on a database) starts faster
    without importing the HTTP layer."""
    settings = settings or Settings.from_env()
    instance_dir = settings.instance_dir.resolve()
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    app = Flask(__name__, instance_path=str(instance_dir))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.sqlalchemy_url, settings.database_timeouts),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=None,
    )
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine, settings.database_timeouts)

    passwords.use_costs(settings)
    box = secret_box(settings, load_or_create_key(instance_dir, settings.encryption_key))
    keys = KeyRing(box, cache_seconds=settings.signing_key_cache_seconds)
    app.extensions["tokenward"] = Runtime(
        settings=settings,
        clock=clock or SystemClock(),
        box=box,
        keys=keys,
        directories=open_directories(settings),
    )

    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )

    if http:
        from server.api import register_api
        from server.http.ratelimits import install_rate_limits
        from server.web import register_web

        register_web(app)
        register_api(app)
        # Last: the limits wrap every view whose operation is declared `rate_limited`, whichever blueprint.
        install_rate_limits(app, app.extensions["tokenward"])
    return app
