"""The OpenID Connect provider, a front door beside the JSON API and the pages (Authlib's protocol,
Tokenward's sessions, assurance and client registry)."""

from __future__ import annotations

from flask import Flask

from server.oidc import views
from server.oidc.provider import create_provider


def register_oidc(app: Flask) -> None:
    app.extensions["tokenward_oidc"] = create_provider(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.well_known)
