"""Who is calling: a Bearer access token, or the web pages' session cookie, checked on every call.

The cookie carries the same JWT as a Bearer header would (HttpOnly, SameSite=Strict). A state-changing request
authenticated by the cookie must also echo the CSRF cookie in a header (double submit) and, when the browser
says where it comes from, come from our own origin.
"""

from __future__ import annotations

import base64
import hmac
import logging
from dataclasses import dataclass
from typing import Literal, overload
from urllib.parse import unquote_plus

from flask import request

from server.config import Settings
from server.db import current_session
from server.errors import Forbidden, InvalidClient, Unauthenticated
from server.http.context import _request_state, runtime, set_principal
from server.services import clients
from server.services.assurance import Access, check_access
from server.services.clients import Client, ClientRow
from server.services.sessions import Principal, authenticate_bearer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CookieNames:
    access: str
    refresh: str
    csrf: str


# Plain http (local development): browsers refuse `__Host-` cookies without Secure, and Secure without https.
PLAIN_COOKIES = CookieNames(access="tw_access", refresh="tw_refresh", csrf="tw_csrf")
# Under https: `__Host-` cookies are Secure, Path=/ and without Domain, so neither a sibling subdomain nor a
# plain-http page on the network can plant or overwrite one (cookie tossing, session fixation).
HOST_COOKIES = CookieNames(access="__Host-tw_access", refresh="__Host-tw_refresh", csrf="__Host-tw_csrf")
ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE = PLAIN_COOKIES.access, PLAIN_COOKIES.refresh, PLAIN_COOKIES.csrf
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(Forbidden):
    code, title = "csrf_failed", "The request did not prove it comes from this site"


def cookie_names(settings: Settings) -> CookieNames:
    """The pages' cookie names: `__Host-` ones when the public URL is https."""
    return HOST_COOKIES if settings.secure_cookies else PLAIN_COOKIES


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class WrongOrigin(CsrfFailed):
    """A page of another origin, most often this server opened under another address than its public URL
    (127.0.0.1 instead of localhost, a port or name the configuration does not know)."""

    code, title = "wrong_origin", "The page was opened at an address this server does not know as its own"


def check_csrf() -> None:
    public_origin = runtime().settings.public_origin
    origin = request.headers.get("Origin")
    if origin is not None and origin != public_origin:
        logger.warning(
            "refused a request from a page at %r: the public URL is %s (set TOKENWARD_PUBLIC_URL to the "
            "address people open)",
            origin[:200],
            public_origin,
        )
        raise WrongOrigin(
            f"This server's address is {public_origin}: open it there. If people reach it at another "
            "address, its operator sets TOKENWARD_PUBLIC_URL (or public_url in the config file) to that "
            "address."
        )
    expected = request.cookies.get(cookie_names(runtime().settings).csrf, "")
    presented = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfFailed()


def authenticate_request(access: Access) -> Principal:
    """The caller's session, checked against what the route needs (server.services.assurance)."""
    token = bearer_token()
    if token is None:
        token = request.cookies.get(cookie_names(runtime().settings).access)
        if token is None:
            raise Unauthenticated()
        if request.method not in SAFE_METHODS:
            check_csrf()
    rt = runtime()
    principal = authenticate_bearer(current_session(), rt, access_token=token)
    set_principal(principal)
    check_access(
        access,
        claims=principal.claims,
        role=principal.user.role,
        now=rt.now(),
        step_up_max_age=rt.settings.step_up_max_age,
    )
    return principal


def basic_credentials() -> tuple[str, str] | None:
    """`client_id:client_secret` from an `Authorization: Basic` header (RFC 7617; the parts form-encoded as
    RFC 6749 2.3.1 says), or None when the header is absent or not Basic."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidClient() from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient()
    return unquote_plus(client_id), unquote_plus(secret)


NEEDS_CLIENT = "This call needs client authentication (HTTP Basic with client_id:client_secret)"


@overload
def authenticate_client(*, required: Literal[True]) -> Client: ...
@overload
def authenticate_client(*, required: bool) -> Client | None: ...
def authenticate_client(*, required: bool) -> Client | None:
    """The registered client calling, by HTTP Basic; InvalidClient (401) when required and absent, or when
    given and wrong. Checked before anything else of the request is looked at."""
    credentials = basic_credentials()
    if credentials is None:
        if required:
            raise InvalidClient(NEEDS_CLIENT)
        return None
    return clients.authenticate_client(current_session(), client_id=credentials[0], secret=credentials[1])


def authenticate_login_form() -> ClientRow:
    """`authenticate_client(required=True)` for the one-step verify, whose hot path reads the client as a
    plain row (server.services.one_step). Once per request: the rate limiter may have asked first
    (server.http.ratelimits); the sign-in confirms the row before it commits."""
    state = _request_state()
    if "login_form_client" not in state:
        credentials = basic_credentials()
        if credentials is None:
            raise InvalidClient(NEEDS_CLIENT)
        state["login_form_client"] = clients.authenticate_client_row(
            current_session(), client_id=credentials[0], secret=credentials[1]
        )
    client: ClientRow = state["login_form_client"]
    return client
