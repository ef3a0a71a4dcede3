"""The browser's session as cookies, so that the pages' JavaScript never holds a token.

- access: the access JWT (HttpOnly, SameSite=Strict, Path=/), read by the API like a Bearer header.
- refresh: the refresh token (HttpOnly, SameSite=Strict); under plain http only sent to `/web/session/*`.
- csrf: a random value the JavaScript echoes in CSRF_HEADER (readable by scripts on purpose).

Under an https public URL they are `__Host-` cookies (server.http.auth.cookie_names): Secure, Path=/ (the
prefix demands it, so the refresh cookie then goes with every request to this origin, still HttpOnly and
SameSite=Strict) and no Domain. Under plain http (local development) they keep their plain names, without
Secure, which a browser would refuse there.
"""

from __future__ import annotations

import secrets

from flask import Response, request

from server.config import Settings
from server.db import current_session
from server.errors import InvalidToken
from server.http.auth import PLAIN_COOKIES, cookie_names
from server.http.context import runtime
from server.services.sessions import IssuedSession, Principal, authenticate_bearer

SESSION_PATH = "/web/session"


def new_csrf_value() -> str:
    return secrets.token_urlsafe(32)


def refresh_path(settings: Settings) -> str:
    return "/" if settings.secure_cookies else SESSION_PATH


def set_csrf_cookie(response: Response, settings: Settings) -> None:
    """A fresh double-submit value; a browser-session cookie (the pages set it again when it is gone)."""
    response.set_cookie(
        cookie_names(settings).csrf,
        new_csrf_value(),
        path="/",
        secure=settings.secure_cookies,
        httponly=False,
        samesite="Strict",
    )


def set_session_cookies(response: Response, settings: Settings, issued: IssuedSession) -> None:
    """Stores an issued session; the CSRF value changes with every sign-in (no fixation)."""
    names = cookie_names(settings)
    response.set_cookie(
        names.access,
        issued.access_token,
        max_age=issued.expires_in,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    response.set_cookie(
        names.refresh,
        issued.refresh_token,
        max_age=settings.refresh_ttl,
        path=refresh_path(settings),
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    set_csrf_cookie(response, settings)
    _forget_plain_names(response, settings)


def clear_session_cookies(response: Response, settings: Settings) -> Response:
    names = cookie_names(settings)
    for name, path in ((names.access, "/"), (names.refresh, refresh_path(settings))):
        response.delete_cookie(
            name, path=path, secure=settings.secure_cookies, httponly=True, samesite="Strict"
        )
    _forget_plain_names(response, settings)
    return response


def _forget_plain_names(response: Response, settings: Settings) -> None:
    """Under https, a browser may still hold the session under the unprefixed names of an older version: they
    are no longer read, and are expired on sign-in and sign-out."""
    if not settings.secure_cookies:
        return
    plain = ((PLAIN_COOKIES.access, "/"), (PLAIN_COOKIES.refresh, SESSION_PATH), (PLAIN_COOKIES.csrf, "/"))
    for name, path in plain:
        if name in request.cookies:
            response.delete_cookie(name, path=path, secure=True, samesite="Strict")


def signed_in() -> Principal | None:
    """The holder of the access cookie, when it is valid (signature, expiry, revocation, enabled user)."""
    access_token = request.cookies.get(cookie_names(runtime().settings).access)
    if not access_token:
        return None
    try:
        return authenticate_bearer(current_session(), runtime(), access_token=access_token)
    except InvalidToken:
        return None
