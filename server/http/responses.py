"""Response bodies, declared on each operation (server.http.contract): the view's answer is checked against
its model and serialized from it, and the OpenAPI document shows the model's JSON Schema, so neither the
document nor a client generated from it can drift from what the server sends.

Fields that a view leaves out stay out (`exclude_unset`): an optional field is absent, not null, unless the
view sets it to null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Timestamp = Annotated[float, Field(description="seconds since the Unix epoch")]
TokenType = Literal["totp", "hotp", "webauthn", "fob"]
TokenState = Literal["pending", "active", "disabled"]


class Reply(BaseModel):
    """A body whose every field is declared: a field a view adds without declaring it fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenReply(BaseModel):
    """A body defined by a standard or a library (WebAuthn options, JWKs, OAuth answers) that may carry
    members beyond the ones named here."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Session(Reply):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str
    amr: list[str] = Field(description="RFC 8176 authentication methods: pwd, otp, hwk, mfa, …")
    acr: str
    scope: str


class EnrollSession(Session):
    status: Literal["enroll"]


class FobChallenge(Reply):
    challenge: str = Field(description="the OCRA challenge to type into the fob")
    suite: str = Field(description="the OCRA suite (RFC 6287)")


class PublicKeyRequestOptions(OpenReply):
    """PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3); binary members are base64url strings."""

    challenge: str
    rpId: str | None = None
    timeout: int | None = None
    allowCredentials: list[dict[str, Any]] | None = None
    userVerification: str | None = None


class WebauthnChallenge(Reply):
    publicKey: PublicKeyRequestOptions


class Challenge(Reply):
    """A second-factor transaction: answer it with POST /api/v1/verify {transaction_id, <answer>}."""

    status: Literal["second_factor", "challenge"]
    transaction_id: str
    expires_in: int
    methods: list[str] = Field(description="otp, fob, webauthn, recovery, temporary")
    webauthn: WebauthnChallenge | None = None
    fob: FobChallenge | None = None


class LoginAnswer(RootModel[Annotated[Challenge | EnrollSession, Field(discriminator="status")]]):
    pass


class UserView(Reply):
    username: str
    id: str = Field(description="stable user id (the JWT `sub`)")
    role: Literal["user", "admin"]
    disabled: bool
    created_at: Timestamp
    source: str = Field(description="local, or the directory (ldap) the user comes from")


class TokenView(Reply):
    """A token as its owner sees it: never its secret."""

    id: str
    type: TokenType
    state: TokenState
    description: str
    created_at: Timestamp
    activated_at: Timestamp | None
    last_used_at: Timestamp | None
    locked: bool
    locked_until: Timestamp | None = None
    expires_at: Timestamp | None = Field(default=None, description="pending tokens: when enrollment ends")
    algorithm: Literal["SHA1", "SHA256", "SHA512"] | None = None
    digits: int | None = None
    period: int | None = None
    serial: str | None = None
    suite: str | None = None
    aaguid: str | None = None


class AdminTokenView(TokenView):
    user: str | None = Field(description="the owner's username; null for an unassigned imported token")
    fail_count: int
    drift_steps: int | None
    counter: int | None


class Me(UserView):
    amr: list[str]
    acr: str | None
    auth_time: int | None = Field(description="when the first factor was answered (seconds since the epoch)")
    scope: str
    tokens: list[TokenView]


class UserDetail(UserView):
    tokens: list[AdminTokenView]


class UserPage(Reply):
    users: list[UserView]
    total: int


class TokenList(Reply):
    tokens: list[TokenView]


class AdminTokenPage(Reply):
    tokens: list[AdminTokenView]
    total: int


class OtpEnrollment(Reply):
    id: str
    type: Literal["totp", "hotp"]
    state: Literal["pending"]
    otpauth_uri: str
    secret: str = Field(description="base32; shown in this answer only")
    qr_svg: str = Field(description="the otpauth URI as an SVG QR code")
    expires_in: int


class PublicKeyCreationOptions(OpenReply):
    """PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3); binary members are base64url strings."""

    rp: dict[str, Any]
    user: dict[str, Any]
    challenge: str
    pubKeyCredParams: list[dict[str, Any]]


class WebauthnEnrollment(Reply):
    id: str
    type: Literal["webauthn"]
    state: Literal["pending"]
    expires_in: int
    publicKey: PublicKeyCreationOptions


class TokenCreated(RootModel[Annotated[OtpEnrollment | WebauthnEnrollment, Field(discriminator="type")]]):
    pass


class TokenActivated(Reply):
    id: str
    state: Literal["active"]


class ClientView(Reply):
    client_id: str
    name: str
    audience: str
    allow: list[str]
    redirect_uris: list[str]
    public: bool
    require: Literal["mfa", "phishing-resistant"] | None
    first_party: bool
    created_at: Timestamp


class ClientWithSecret(ClientView):
    client_secret: str | None = Field(description="shown in this answer only; null for a public client")


class ClientList(Reply):
    clients: list[ClientView]


class TemporaryCode(Reply):
    code: str
    expires_at: Timestamp


class RecoveryCodes(Reply):
    codes: list[str]


class RecoveryCodesLeft(Reply):
    remaining: int


class AuditEventView(Reply):
    id: int
    at: Timestamp
    actor: str
    action: str
    target: str | None
    result: Literal["success", "failure"]
    reason: str | None
    client_ip: str | None
    request_id: str | None


class AuditPage(Reply):
    events: list[AuditEventView]
    total: int


class Health(Reply):
    status: Literal["ok"]


class Readiness(Reply):
    status: Literal["ready"]


class Jwk(OpenReply):
    kty: str
    kid: str
    alg: str | None = None
    use: str | None = None


class Jwks(Reply):
    keys: list[Jwk]


class OpenApiDocument(OpenReply):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class ProviderMetadata(OpenReply):
    """OpenID Connect Discovery 1.0 provider metadata."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    revocation_endpoint: str
    end_session_endpoint: str
    jwks_uri: str
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]


class UserInfo(Reply):
    sub: str
    preferred_username: str | None = None


class OAuthTokens(OpenReply):
    """RFC 6749 5.1 (and an OpenID Connect `id_token` for scope openid)."""

    access_token: str
    token_type: str
    expires_in: int | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


class OAuthError(OpenReply):
    """RFC 6749 5.2 / RFC 6750 3.1: the OAuth endpoints answer errors as their standards say."""

    error: str
    error_description: str | None = None
    error_uri: str | None = None
    state: str | None = None


class PageSignedIn(Reply):
    """What the pages learn of a session (its tokens are in HttpOnly cookies)."""

    status: Literal["enroll", "signed_in"]
    scope: str
    amr: list[str]
    acr: str
    expires_in: int


class PageLoginAnswer(RootModel[Annotated[Challenge | PageSignedIn, Field(discriminator="status")]]):
    pass


class VerifyAnswer(RootModel[Session | Challenge]):
    """A session; or, for `username` alone, a transaction (status `challenge`)."""


class RevocationAnswer(OpenReply):
    """RFC 7009 2.2: an empty object, whether or not there was anything to revoke."""
