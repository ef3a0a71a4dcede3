"""Friendly HTML error pages for people; problem+json stays the answer for programs.

Page views raise into `render_error_page` (their blueprint's handler). An unknown address has no blueprint, so
`not_found` is registered on the app for 404 only: a browser navigating outside the JSON paths gets the page,
and every other request the app's own HTTP error handler (server.http.problems), unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, render_template, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.http import HTTP_STATUS_CODES

from server.errors import TokenwardError
from server.http.context import request_id
from server.services import users
from server.web.cookies import signed_in

log = logging.getLogger(__name__)

# Paths that always answer problem+json, whatever the client accepts.
MACHINE_PATHS = ("/api/", "/web/session/", "/.well-known/", "/healthz", "/readyz", "/metrics")

TITLES = {
    403: "You can't open this page",
    404: "Page not found",
    500: "Something went wrong",
}
DETAILS = {
    403: "Your account does not have access to this page.",
    404: "There is nothing at this address. Check the link, or go back to your account.",
    500: "The server could not show this page. Try again in a moment.",
}


def render_error_page(
    error: Exception | int, *, detail: str | None = None, user: dict[str, Any] | None = None
) -> tuple[str, int]:
    """The error page for a status or an exception; an unexpected exception is logged with an incident id."""
    incident = None
    if isinstance(error, int):
        status = error
    elif isinstance(error, HTTPException):
        status = error.code or 500
    elif isinstance(error, TokenwardError):
        status = error.status
        detail = detail or error.detail
    else:
        status, incident = 500, request_id()
        log.error("unexpected error on a page [request %s]", incident, exc_info=error)
    html = render_template(
        "error.html",
        status=status,
        title=TITLES.get(status, HTTP_STATUS_CODES.get(status, "Error")),
        detail=detail or DETAILS.get(status, "The request could not be completed."),
        incident=incident,
        user=user,
    )
    return html, status


def wants_page() -> bool:
    """A browser navigating (it prefers HTML) to an address outside the machine paths."""
    if request.method not in ("GET", "HEAD") or request.path.startswith(MACHINE_PATHS):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _signed_in_user() -> dict[str, Any] | None:
    """Who is looking, for the page's header and its way back (their account rather than sign-in)."""
    try:
        principal = signed_in()
    except TokenwardError:
        return None
    return None if principal is None else users.user_view(principal.user)


def not_found(err: NotFound) -> Any:
    if wants_page():
        return render_error_page(404, user=_signed_in_user())
    problem_handler = current_app.error_handler_spec[None][None].get(HTTPException)
    return err if problem_handler is None else problem_handler(err)
