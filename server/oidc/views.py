"""`/.well-known/openid-configuration` and `/oauth2/*`: Authlib's server (server.oidc.provider) behind
Tokenward's pages. The authorization request is served by the sign-in page (the person sees which
application asks); errors go back to the client as the specification says, except a bad `client_id` or
`redirect_uri`, which Tokenward's own page shows (never a redirect to an unregistered address)."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError
from flask import Blueprint, Response, current_app, jsonify, render_template, request

from server.db import current_session
from server.errors import InvalidToken, Unauthenticated
from server.http.auth import bearer_token, cookie_names
from server.http.context import actor, runtime
from server.http.contract import Answer, operation
from server.http.responses import OAuthError, OAuthTokens, ProviderMetadata, RevocationAnswer, UserInfo
from server.oidc.discovery import discovery_document
from server.services import oidc
from server.services.sessions import Principal
from server.web.cookies import clear_session_cookies, set_csrf_cookie, signed_in
from server.web.error_pages import render_error_page

bp = Blueprint("oidc", __name__)
well_known = Blueprint("oidc_discovery", __name__, url_prefix="/.well-known")
# Our own parameter on the continuation of a `prompt=login` request: the session must be newer than this.
AUTHENTICATED_AFTER = "tw_authenticated_after"
MAX_SECONDS_DIGITS = 12
HTML_ERROR = Answer("The request is not valid (an error page for the person, text/html)", media="text/html")


def _provider() -> Any:
    return current_app.extensions["tokenward_oidc"]


@bp.after_request
def _pages_get_a_csrf_value(response: Response) -> Response:
    if response.mimetype == "text/html" and cookie_names(runtime().settings).csrf not in request.cookies:
        set_csrf_cookie(response, runtime().settings)
    return response


@operation(
    well_known,
    "/openid-configuration",
    "GET",
    summary="OpenID Connect Discovery: the provider's endpoints and what it supports",
    responses={200: "The provider metadata (OpenID Connect Discovery 1.0)"},
    model=ProviderMetadata,
    uses_database=False,
)
def configuration() -> Any:
    return discovery_document(runtime().settings.public_url), 200, {"Cache-Control": "public, max-age=300"}


def _refused(error: OAuth2Error) -> Any:
    """Back to the client when Authlib validated where to (RFC 6749 4.1.2.1); our page otherwise."""
    if error.redirect_uri:
        return _provider().handle_error_response(None, error)
    detail = f"The application's sign-in request is not valid: {error.description or error.error}."
    return render_error_page(400, detail=detail)


def _full_session() -> Principal | None:
    principal = signed_in()
    return principal if principal is not None and principal.claims.get("azp") is None else None


def _whole_seconds(value: str | None) -> int | None:
    """A count of seconds in ASCII digits (`"²".isdigit()` is true, yet int() refuses it); None otherwise,
    or when longer than any meaningful count (int() refuses thousands of digits)."""
    if value and value.isascii() and value.isdigit() and len(value) <= MAX_SECONDS_DIGITS:
        return int(value)
    return None


def _continuation(params: dict[str, str]) -> str:
    return "/oauth2/authorize?" + urlencode(params)


@operation(
    bp,
    "/oauth2/authorize",
    "GET",
    summary="OpenID Connect authorization endpoint (response_type=code): sign-in page, consent, redirect",
    responses={
        200: "The sign-in or consent page (text/html)",
        302: "Back to the client's redirect_uri with a code or an error",
        400: HTML_ERROR,
    },
    response_media="text/html",
)
def authorize() -> Any:
    rt = runtime()
    principal = _full_session()
    try:
        grant = _provider().get_consent_grant(end_user=principal)
    except OAuth2Error as error:
        return _refused(error)
    params = request.args.to_dict()
    prompts = set(params.get("prompt", "").split())
    client = grant.client.client
    after = _whole_seconds(params.get(AUTHENTICATED_AFTER))
    authenticated_after = float(after) if after is not None else None
    if "login" in prompts:
        # Sign in again now; the continuation says so without `prompt=login`, or it would never end.
        params.pop("prompt")
        params[AUTHENTICATED_AFTER] = str(int(rt.now()))
        authenticated_after = rt.now() + 1  # this session is too old, whatever its auth_time
    max_age = params.get("max_age")
    need = oidc.unmet_need(
        principal,
        client=client,
        acr_values=params.get("acr_values"),
        max_age=_whole_seconds(max_age),
        authenticated_after=authenticated_after,
        now=rt.now(),
    )
    redirect_uri, state = grant.redirect_uri, params.get("state")
    if need is not None:
        if "none" in prompts:
            kind = LoginRequiredError if need == "login" else InteractionRequiredError
            return _refused(kind(redirect_uri=redirect_uri, state=state))
        if need == "max_age" and params.pop("max_age", None) is not None:
            # As for prompt=login: once signed in again the continuation must not ask forever (max_age=0).
            params[AUTHENTICATED_AFTER] = str(int(rt.now()))
        return _sign_in_page(client, params, step_up=principal.user.username if principal else "")
    assert principal is not None
    scope = grant.request.scope or ""
    if not oidc.has_consent(current_session(), user=principal.user, client=client, scope=scope):
        if "none" in prompts:
            return _refused(ConsentRequiredError(redirect_uri=redirect_uri, state=state))
        return _consent_page(client, params, scope, redirect_uri)
    return _provider().create_authorization_response(grant_user=principal, grant=grant)


def _sign_in_page(client: Any, params: dict[str, str], *, step_up: str) -> Any:
    required = oidc.required_acr(client, params.get("acr_values"))
    return render_template(
        "login.html",
        next_page=_continuation(params),
        application=client.name,
        step_up=step_up,
        needs_security_key=required == "phishing-resistant",
        login_hint=params.get("login_hint", "")[:64],
        try_refresh=not step_up,
        session_ended=False,
    )


def _consent_page(client: Any, params: dict[str, str], scope: str, redirect_uri: str) -> Any:
    parts = urlsplit(redirect_uri)
    html = render_template(
        "oidc_consent.html",
        application=client.name,
        destination=f"{parts.scheme}://{parts.netloc}",
        scopes=scope.split(),
        action=_continuation(params),
        csrf_value=request.cookies.get(cookie_names(runtime().settings).csrf, ""),
    )
    response = _form_page(html)
    # The answer redirects to the application: the consent form may be sent on to its origin.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        f"base-uri 'none'; frame-ancestors 'none'; form-action 'self' {parts.scheme}://{parts.netloc}"
    )
    return response


def _form_page(html: str) -> Response:
    """A page whose form posts back here. `same-origin` rather than the pages' `no-referrer`: with that a
    browser sends `Origin: null` with a form, and the origin check below could not tell who posted."""
    response = Response(html, mimetype="text/html")
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _form_csrf_ok() -> bool:
    expected = request.cookies.get(cookie_names(runtime().settings).csrf, "")
    presented = request.form.get("csrf", "")
    origin = request.headers.get("Origin")
    same_origin = origin is None or origin == runtime().settings.public_origin
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode()) and same_origin


@operation(
    bp,
    "/oauth2/authorize",
    "POST",
    summary="The consent page's answer (form: csrf, decision=allow|deny); redirects back to the client",
    responses={
        200: "The sign-in page again, when the session no longer suffices (text/html)",
        302: "Back to the client with a code or access_denied",
        400: HTML_ERROR,
    },
    response_media="text/html",
)
def consent() -> Any:
    principal = _full_session()
    if principal is None or not _form_csrf_ok():
        return render_error_page(
            400, detail="The consent could not be checked. Start again from the application."
        )
    try:
        grant = _provider().get_consent_grant(end_user=principal)
    except OAuth2Error as error:
        return _refused(error)
    client, scope = grant.client.client, grant.request.scope or ""
    if request.form.get("decision") != "allow":
        return _refused(AccessDeniedError(redirect_uri=grant.redirect_uri, state=request.args.get("state")))
    oidc.grant_consent(
        current_session(),
        runtime(),
        user=principal.user,
        client=client,
        scope=scope,
        actor=actor(principal.user.username),
    )
    return authorize()


@operation(
    bp,
    "/oauth2/token",
    "POST",
    summary="OpenID Connect token endpoint: authorization_code (with PKCE) and refresh_token grants",
    responses={
        200: "Tokens (and an ID token for scope openid)",
        400: Answer("An OAuth 2.0 error (RFC 6749 5.2): invalid_request, invalid_grant, …", OAuthError),
        401: Answer("invalid_client", OAuthError),
        429: "Rate limited (with the other secret checks)",
    },
    model=OAuthTokens,
    rate_limited=True,
)
def token() -> Any:
    return _provider().create_token_response()


@operation(
    bp,
    "/oauth2/revoke",
    "POST",
    summary="Token revocation (RFC 7009): ends the session family of the client's access or refresh token",
    responses={
        200: "Revoked, or nothing to revoke",
        400: Answer("An OAuth 2.0 error (RFC 6749 5.2)", OAuthError),
        401: Answer("invalid_client", OAuthError),
    },
    model=RevocationAnswer,
)
def revoke() -> Any:
    return _provider().create_endpoint_response("revocation")


def _userinfo() -> Any:
    access_token = bearer_token()
    try:
        if access_token is None:
            raise Unauthenticated()
        principal, scope = oidc.relying_party_principal(
            current_session(), runtime(), access_token=access_token
        )
    except (InvalidToken, Unauthenticated):
        response = jsonify({"error": "invalid_token"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return jsonify(oidc.user_claims(principal.user, scope))


@operation(
    bp,
    "/oauth2/userinfo",
    "GET",
    summary="OpenID Connect userinfo: sub and preferred_username of a client's access token",
    responses={200: "The user's claims", 401: Answer("invalid_token (RFC 6750 3.1)", OAuthError)},
    model=UserInfo,
)
def userinfo() -> Any:
    return _userinfo()


@operation(
    bp,
    "/oauth2/userinfo",
    "POST",
    summary="OpenID Connect userinfo (POST, as GET)",
    responses={200: "The user's claims", 401: Answer("invalid_token (RFC 6750 3.1)", OAuthError)},
    model=UserInfo,
)
def userinfo_post() -> Any:
    return _userinfo()


def _logout_request() -> tuple[str | None, str | None]:
    """The relying party's session the id_token_hint names, and where to send the browser afterwards:
    `post_logout_redirect_uri` only on the origin of one of the client's registered redirect URIs."""
    hint = request.values.get("id_token_hint", "")
    claims = oidc.id_token_hint_claims(current_session(), runtime(), id_token=hint) if hint else None
    client_id = str(claims["aud"]) if claims else request.values.get("client_id", "")
    client = oidc.find_client(current_session(), client_id=client_id)
    target = request.values.get("post_logout_redirect_uri", "")
    allowed = False
    if client is not None and target:
        origins = {_origin(uri) for uri in client.redirect_uris.split("\n") if uri}
        allowed = _origin(target) in origins
    if allowed and (state := request.values.get("state")):
        target += ("&" if "?" in target else "?") + urlencode({"state": state})
    family = str(claims["sid"]) if claims and claims.get("sid") else None
    return family, target if allowed else None


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""


@operation(
    bp,
    "/oauth2/logout",
    "GET",
    summary="RP-initiated logout (end_session_endpoint): asks the person to confirm signing out",
    responses={200: "The sign-out confirmation page (text/html)"},
    uses_database=False,
    response_media="text/html",
)
def logout_page() -> Any:
    return _form_page(
        render_template(
            "oidc_logout.html",
            action="/oauth2/logout?" + urlencode(request.args.to_dict()),
            csrf_value=request.cookies.get(cookie_names(runtime().settings).csrf, ""),
        )
    )


@operation(
    bp,
    "/oauth2/logout",
    "POST",
    summary="RP-initiated logout confirmed: ends the Tokenward browser session and the hinted client session",
    responses={
        302: "To post_logout_redirect_uri when allowed",
        200: "Signed out (text/html)",
        400: HTML_ERROR,
    },
    response_media="text/html",
)
def logout() -> Any:
    if not _form_csrf_ok():
        return render_error_page(400, detail="The sign-out could not be checked. Try again.")
    family, target = _logout_request()
    principal = signed_in()
    who = actor(principal.user.username if principal else "anonymous")
    oidc.end_session(current_session(), runtime(), principal=principal, hinted_family=family, actor=who)
    if target:
        response = Response(status=302, headers={"Location": target})
    else:
        response = Response(render_template("oidc_logout.html", done=True), mimetype="text/html")
    return clear_session_cookies(response, runtime().settings)
