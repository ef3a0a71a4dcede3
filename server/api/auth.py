"""Who is calling: a Bearer access token, or the web pages' session cookie, checked on every call.

The cookie carries the same JWT as a Bearer header would (HttpOnly, SameSite=Strict). A state-changing request
authenticated by the cookie must also echo the CSRF cookie in a header (double submit) and, when the browser
says where it comes from, come from our own origin.
"""

from __future__ import annotations

import hmac
from typing import Literal

from flask import request

from server.api.context import runtime, set_principal
from server.db import current_session
from server.errors import Forbidden, Unauthenticated
from server.services.sessions import FULL_SCOPE, Principal, authenticate_bearer

ACCESS_COOKIE = "tw_access"
REFRESH_COOKIE = "tw_refresh"
CSRF_COOKIE = "tw_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(Forbidden):
    code, title = "csrf_failed", "The request did not prove it comes from this site"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def check_csrf() -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    presented = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfFailed()
    origin = request.headers.get("Origin")
    if origin is not None and origin != runtime().settings.public_origin:
        raise CsrfFailed()


def authenticate_request(access: Literal["user", "enroll", "admin"]) -> Principal:
    token = bearer_token()
    if token is None:
        token = request.cookies.get(ACCESS_COOKIE)
        if token is None:
            raise Unauthenticated()
        if request.method not in SAFE_METHODS:
            check_csrf()
    principal = authenticate_bearer(current_session(), runtime(), access_token=token)
    set_principal(principal)
    if access != "enroll" and principal.scope != FULL_SCOPE:
        raise Forbidden("This session may only enroll a token; sign in again with it")
    if access == "admin" and principal.user.role != "admin":
        raise Forbidden("Administrators only")
    return principal
