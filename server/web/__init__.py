"""The web pages (sign-in, account, administration) and the browser's cookie session, on the JSON API."""

from __future__ import annotations

from flask import Flask

from server.oidc import register_oidc
from server.web import browser_session, pages
from server.web.error_pages import not_found
from server.web.security_headers import add_security_headers, add_transport_security


def register_web(app: Flask) -> None:
    app.register_blueprint(pages.bp)
    app.register_blueprint(browser_session.bp)
    register_oidc(app)
    app.register_error_handler(404, not_found)
    app.after_request(add_security_headers)
    app.after_request(add_transport_security)
