"""The Authlib side: an OAuth 2.0 / OpenID Connect authorization server whose grants store and check
through server.services.oidc. Authlib parses and validates the protocol (client authentication, redirect
URI, PKCE, nonce, prompt, error responses); the methods here are the ones it leaves to its user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from flask import Flask
from joserfc.jwk import ECKey

from server.db import current_session
from server.errors import InvalidClient, InvalidGrant, RefreshTokenInvalid, RefreshTokenReused
from server.http.context import actor, runtime
from server.services import clients, oidc
from server.services.clients import Client
from server.services.keys import ALGORITHM

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")


class RelyingParty:
    """A registered client as Authlib's ClientMixin sees it."""

    id_token_signed_response_alg = ALGORITHM

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.id

    def get_default_redirect_uri(self) -> None:
        return None  # OpenID Connect: every request names its redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(value for value in (scope or "").split() if value in oidc.SCOPES_SUPPORTED)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris.split("\n")  # exact, registered, no wildcards

    def check_client_secret(self, client_secret: str) -> bool:
        try:
            clients.authenticate_client(current_session(), client_id=self.client.id, secret=client_secret)
        except InvalidClient:
            return False
        return True

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.client.public else method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass
class RedeemedCode:
    """A redeemed code as Authlib's AuthorizationCodeMixin sees it."""

    grant: oidc.CodeGrant

    @property
    def code_challenge(self) -> str | None:
        return self.grant.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        return self.grant.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.grant.nonce

    def get_auth_time(self) -> int:
        return self.grant.auth_time

    def get_acr(self) -> str:
        return self.grant.acr

    def get_amr(self) -> list[str]:
        return self.grant.amr


def _query_client(client_id: str) -> RelyingParty | None:
    client = oidc.find_client(current_session(), client_id=client_id or "")
    return RelyingParty(client) if client is not None else None


class S256Only(CodeChallenge):  # type: ignore[misc]  # Authlib is untyped
    """PKCE with S256 only (no `plain`); required of public clients at the authorization endpoint too."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256", redirect_uri=redirect_uri)
        if grant.request.client.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send a PKCE code_challenge (S256)")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]  # Authlib is untyped
    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]

    def validate_token_request(self) -> None:
        """A code refused after it was redeemed (its redirect URI or PKCE verifier did not match) stays
        spent: its redemption is committed with the refusal."""
        try:
            super().validate_token_request()
        except OAuth2Error:
            current_session().commit()
            raise

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        oidc.save_code(
            current_session(),
            runtime(),
            code=code,
            client=request.client.client,
            principal=request.user,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            actor=actor(request.user.user.username),
        )

    def query_authorization_code(self, code: str, client: RelyingParty) -> RedeemedCode:
        """Redeems at once (single use decided by the database); a failure is `invalid_grant`."""
        try:
            grant = oidc.redeem_code(
                current_session(), runtime(), code=code, client=client.client, actor=actor()
            )
        except InvalidGrant as err:
            raise InvalidGrantError(err.detail) from err
        return RedeemedCode(grant)

    def delete_authorization_code(self, authorization_code: RedeemedCode) -> None:
        """Nothing: the code was spent when redeemed, and stays to recognise a replay."""

    def authenticate_user(self, authorization_code: RedeemedCode) -> RedeemedCode:
        return authorization_code  # the token generator needs the whole grant, not only the user


class IdToken(OpenIDCode):  # type: ignore[misc]  # Authlib is untyped
    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return oidc.code_nonce_seen(current_session(), client_id=request.payload.client_id, nonce=nonce)

    def resolve_client_private_key(self, client: RelyingParty) -> ECKey:
        rt = runtime()
        key = rt.keys.signing_key(current_session(), now=rt.now())
        return ECKey.import_key(key.private_key, {"kid": key.kid})

    def get_encode_header(self, client: RelyingParty) -> dict[str, str]:
        rt = runtime()
        return {"alg": ALGORITHM, "kid": rt.keys.signing_key(current_session(), now=rt.now()).kid}

    def get_client_claims(self, client: RelyingParty) -> dict[str, Any]:
        rt = runtime()
        now = int(rt.now())
        return {
            "iss": rt.settings.public_url,
            "aud": client.client.id,
            "azp": client.client.id,
            "iat": now,
            "exp": now + rt.settings.access_ttl,
        }

    def get_authorization_code_claims(self, authorization_code: RedeemedCode) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
        claims["sid"] = authorization_code.grant.family_id
        return claims

    def generate_user_info(self, user: RedeemedCode, scope: str) -> dict[str, Any]:
        return oidc.user_claims(user.grant.user, scope)


@dataclass
class PresentedRefreshToken:
    token: str
    scope: str  # as granted: Authlib refuses a broader request (invalid_scope)

    def check_client(self, client: RelyingParty) -> bool:
        return True  # server.services.sessions.refresh_session refuses (and audits) another's session

    def get_scope(self) -> str:
        return self.scope


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]  # Authlib is untyped
    """Rotation and reuse detection are Tokenward's (server.services.sessions), shared with every session."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> PresentedRefreshToken:
        try:
            granted = oidc.granted_scope(
                current_session(),
                runtime(),
                refresh_token=refresh_token,
                client=self.request.client.client,
                actor=actor(),
            )
        except InvalidGrant as err:
            raise InvalidGrantError(err.detail) from err
        return PresentedRefreshToken(refresh_token, granted)

    def authenticate_user(self, refresh_token: PresentedRefreshToken) -> PresentedRefreshToken:
        return refresh_token

    def issue_token(self, user: Any, refresh_token: PresentedRefreshToken) -> dict[str, Any]:
        try:
            issued = oidc.refresh_for_client(
                current_session(),
                runtime(),
                refresh_token=refresh_token.token,
                client=self.request.client.client,
                actor=actor(),
            )
        except (InvalidGrant, RefreshTokenInvalid, RefreshTokenReused) as err:
            raise InvalidGrantError(err.detail) from err
        scope = self.request.payload.scope or refresh_token.scope
        return _token_json(issued.access_token, issued.expires_in, issued.refresh_token, scope)

    def revoke_old_credential(self, refresh_token: PresentedRefreshToken) -> None:
        """Nothing: refresh_session spent it."""


class Revocation(RevocationEndpoint):  # type: ignore[misc]  # Authlib is untyped
    """RFC 7009: a client's access or refresh token ends its whole session family."""

    CLIENT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]

    def authenticate_token(self, request: Any, client: RelyingParty) -> str | None:
        """The session family of the token when it is this client's; None (nothing to do) otherwise."""
        self.check_params(request, client)
        return oidc.token_family(
            current_session(), runtime(), token=request.form["token"], client=client.client
        )

    def revoke_token(self, token: str, request: Any) -> None:
        oidc.revoke_client_family(
            current_session(), runtime(), family_id=token, client=request.client.client, actor=actor()
        )


def _token_json(access_token: str, expires_in: int, refresh_token: str, scope: str) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "scope": scope,
    }


def _generate_token(
    grant_type: str, client: RelyingParty, user: Any, scope: str, **_options: Any
) -> dict[str, Any]:
    """Tokens for a redeemed code: a Tokenward session of the client, in the family the code named."""
    issued = oidc.issue_for_code(
        current_session(), runtime(), grant=user.grant, client=client.client, actor=actor()
    )
    return _token_json(issued.access_token, issued.expires_in, issued.refresh_token, scope)


def create_provider(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer(app, query_client=_query_client, save_token=lambda token, request: None)
    server.register_token_generator("default", _generate_token)
    server.register_grant(CodeGrant, [S256Only(required=True), IdToken(require_nonce=False)])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Revocation)
    return server
