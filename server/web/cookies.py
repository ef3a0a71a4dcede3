"""The browser's session as cookies, so that the pages' JavaScript never holds a token.

- ACCESS_COOKIE: the access JWT (HttpOnly, SameSite=Strict, Path=/), read by the API like a Bearer header.
- REFRESH_COOKIE: the refresh token (HttpOnly, SameSite=Strict), sent only to `/web/session/*`.
- CSRF_COOKIE: a random value the JavaScript echoes in CSRF_HEADER (readable by scripts on purpose).
"""

from __future__ import annotations

import secrets

from flask import Response, request

from server.api.auth import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from server.api.context import runtime
from server.config import Settings
from server.db import current_session
from server.errors import InvalidToken
from server.services.sessions import IssuedSession, Principal, authenticate_bearer

SESSION_PATH = "/web/session"


def new_csrf_value() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, settings: Settings) -> None:
    """A fresh double-submit value; a browser-session cookie (the pages set it again when it is gone)."""
    response.set_cookie(
        CSRF_COOKIE,
        new_csrf_value(),
        path="/",
        secure=settings.secure_cookies,
        httponly=False,
        samesite="Strict",
    )


def set_session_cookies(response: Response, settings: Settings, issued: IssuedSession) -> None:
    """Stores an issued session; the CSRF value changes with every sign-in (no fixation)."""
    response.set_cookie(
        ACCESS_COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=settings.refresh_ttl,
        path=SESSION_PATH,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    set_csrf_cookie(response, settings)


def clear_session_cookies(response: Response, settings: Settings) -> Response:
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, SESSION_PATH)):
        response.delete_cookie(
            name, path=path, secure=settings.secure_cookies, httponly=True, samesite="Strict"
        )
    return response


def signed_in() -> Principal | None:
    """The holder of the access cookie, when it is valid (signature, expiry, revocation, enabled user)."""
    access_token = request.cookies.get(ACCESS_COOKIE)
    if not access_token:
        return None
    try:
        return authenticate_bearer(current_session(), runtime(), access_token=access_token)
    except InvalidToken:
        return None
