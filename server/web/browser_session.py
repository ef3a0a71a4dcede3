"""`/web/session/*`: sign-in, second factor, passkey, refresh and sign-out for the pages.

The same services as `POST /api/v1/login`, `/verify`, `/login/passkey`, `/token/refresh` and `/logout`, and
the same rate limits (their operations are declared `rate_limited`); only the transport differs: an issued
session becomes cookies (server.web.cookies) and the answer carries no token. Every route demands the CSRF
double submit and a same-origin `Origin` header: browsers send one with every POST, so its absence is suspect.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, after_this_request, jsonify, request

from server.api.sessions import challenge_json, run_verify
from server.db import current_session
from server.errors import ServiceUnavailable, TokenwardError, Unauthenticated
from server.http.auth import CsrfFailed, check_csrf, cookie_names
from server.http.context import actor, runtime, set_principal
from server.http.contract import operation
from server.http.responses import Challenge, PageLoginAnswer, PageSignedIn
from server.http.schemas import LoginRequest, PasskeyLoginRequest
from server.http.verify_schemas import PageVerifyRequest
from server.services import login, sessions
from server.services.sessions import IssuedSession
from server.web.cookies import clear_session_cookies, set_session_cookies

bp = Blueprint("web_session", __name__, url_prefix="/web/session")


@bp.before_request
def _same_site_only() -> None:
    if request.headers.get("Origin") is None:
        raise CsrfFailed("The browser did not say which page sent this request")
    check_csrf()


def _signed_in(issued: IssuedSession, *, status: Literal["enroll", "signed_in"]) -> Response:
    """What the page learns of a session: its scope and methods, never a token."""
    shown = PageSignedIn(
        status=status, scope=issued.scope, amr=issued.amr, acr=issued.acr, expires_in=issued.expires_in
    )
    response = jsonify(shown.model_dump(mode="json"))
    set_session_cookies(response, runtime().settings, issued)
    return response


def _clear_cookies_on_the_way_out() -> None:
    after_this_request(lambda response: clear_session_cookies(response, runtime().settings))


@operation(
    bp,
    "/login",
    "POST",
    body=LoginRequest,
    summary="Pages: check a password (as POST /api/v1/login); an enroll-only session becomes cookies",
    model=PageLoginAnswer,
    responses={
        200: "A second-factor transaction, or the enroll status with cookies set",
        401: "Invalid credentials",
        403: "CSRF check failed",
        429: "Rate limited",
    },
    rate_limited=True,
)
def password_login(body: LoginRequest) -> Any:
    result = login.login_with_password(
        current_session(),
        runtime(),
        username=body.username,
        password=body.password,
        actor=actor(),
    )
    if isinstance(result, IssuedSession):
        return _signed_in(result, status="enroll")
    return challenge_json(result)


@operation(
    bp,
    "/passkey",
    "POST",
    body=PasskeyLoginRequest,
    summary="Pages: start a usernameless passkey login (as POST /api/v1/login/passkey)",
    model=Challenge,
    responses={
        200: "A WebAuthn transaction without allowCredentials",
        403: "CSRF check failed",
        429: "Rate limited",
    },
    rate_limited=True,
)
def passkey_login(body: PasskeyLoginRequest) -> Any:
    return challenge_json(login.start_passkey_login(current_session(), runtime(), actor=actor()))


@operation(
    bp,
    "/verify",
    "POST",
    body=PageVerifyRequest,
    summary="Pages: answer a second factor (as POST /api/v1/verify); the session becomes cookies",
    model=PageSignedIn,
    responses={
        200: "Signed in; cookies set",
        401: "The answer is not valid",
        403: "CSRF check failed or token locked",
        429: "Rate limited",
    },
    rate_limited=True,
)
def verify_answer(body: PageVerifyRequest) -> Any:
    issued = run_verify(body.root, client=None)
    return _signed_in(issued, status="signed_in")


@operation(
    bp,
    "/refresh",
    "POST",
    summary="Pages: rotate the refresh cookie (as POST /api/v1/token/refresh)",
    model=PageSignedIn,
    responses={
        200: "Signed in; cookies rotated",
        401: "No or reused refresh cookie; cookies cleared",
        403: "CSRF check failed",
        503: "The user directory did not answer (`directory_unavailable`); cookies kept",
    },
)
def refresh() -> Any:
    """Rotates the refresh cookie. A refusal ends the browser's session (its cookies are cleared); a user
    directory that does not answer (503) does not."""
    presented = request.cookies.get(cookie_names(runtime().settings).refresh)
    try:
        if not presented:
            raise Unauthenticated("No session to refresh; sign in")
        issued = sessions.refresh_session(
            current_session(), runtime(), refresh_token=presented, actor=actor()
        )
    except ServiceUnavailable:
        raise  # the user directory is down: the session stays, the pages try again later
    except TokenwardError:
        _clear_cookies_on_the_way_out()
        raise
    return _signed_in(issued, status="signed_in")


@operation(
    bp,
    "/logout",
    "POST",
    summary="Pages: sign out (as POST /api/v1/logout); revokes the session and clears the cookies",
    responses={204: "Signed out", 401: "No session", 403: "CSRF check failed"},
)
def logout() -> Any:
    """Revokes the session as `POST /api/v1/logout` does (access token and refresh family), then clears
    the cookies. An expired access cookie answers 401: the pages refresh once and sign out again."""
    names = cookie_names(runtime().settings)
    access_token = request.cookies.get(names.access)
    if not access_token:
        raise Unauthenticated()
    principal = sessions.authenticate_bearer(current_session(), runtime(), access_token=access_token)
    set_principal(principal)
    sessions.logout(
        current_session(),
        runtime(),
        principal=principal,
        refresh_token=request.cookies.get(names.refresh),
        actor=actor(),
    )
    return clear_session_cookies(Response(status=204), runtime().settings)
