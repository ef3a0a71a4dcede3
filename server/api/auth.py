"""Who is calling: a Bearer access token, checked on every call (signature, claims, revocation)."""

from __future__ import annotations

from typing import Literal

from flask import g, request

from server.api.context import runtime
from server.db import current_session
from server.errors import Forbidden, Unauthenticated
from server.services.sessions import FULL_SCOPE, Principal, authenticate_bearer


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate_request(access: Literal["user", "enroll", "admin"]) -> Principal:
    token = bearer_token()
    if token is None:
        raise Unauthenticated()
    principal = authenticate_bearer(current_session(), runtime(), access_token=token)
    g.principal = principal
    if access != "enroll" and principal.scope != FULL_SCOPE:
        raise Forbidden("This session may only enroll a token; sign in again with it")
    if access == "admin" and principal.user.role != "admin":
        raise Forbidden("Administrators only")
    return principal
