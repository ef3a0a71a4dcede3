"""Request bodies and query strings, validated with pydantic (strict: a wrong JSON type is a 422).

Free text is refused when it holds control characters: they have no business in a name or description and
PostgreSQL cannot store NUL.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _printable(text: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise ValueError("control characters are not allowed")
    return text


Text = Annotated[str, AfterValidator(_printable)]
Username = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Code = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_printable)]
TransactionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
RecoveryCode = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
Credential = Annotated[dict[str, Any], Field(description="PublicKeyCredential JSON (WebAuthn L3 toJSON())")]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Query(BaseModel):
    """Query strings arrive as text, so these coerce (`?limit=10`) but still refuse unknown names."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginRequest(Body):
    username: Username
    password: Password


class PasskeyLoginRequest(Body):
    pass


ANSWER_FIELDS = ("otp", "fob_response", "credential", "recovery_code", "temporary_code")


class VerifyRequest(Body):
    """One of: a transaction answered (otp, fob_response, credential, recovery_code or temporary_code); a
    one-step `username` + `otp` (+ optional `password`); or `username` alone to start a transaction. The last
    two need client authentication."""

    transaction_id: TransactionId | None = None
    username: Username | None = None
    password: Password | None = None
    otp: Code | None = None
    fob_response: Code | None = None
    credential: Credential | None = None
    recovery_code: RecoveryCode | None = None
    temporary_code: RecoveryCode | None = None

    @property
    def answer_field(self) -> str | None:
        return next((name for name in ANSWER_FIELDS if getattr(self, name) is not None), None)

    @model_validator(mode="after")
    def _one_form(self) -> VerifyRequest:
        answers = [name for name in ANSWER_FIELDS if getattr(self, name) is not None]
        if self.transaction_id is not None:
            if self.username is not None or self.password is not None or len(answers) != 1:
                raise ValueError(f"with transaction_id give exactly one of {', '.join(ANSWER_FIELDS)}")
        elif self.username is None:
            raise ValueError("give transaction_id, or username")
        elif answers not in ([], ["otp"]) or (self.password is not None and not answers):
            raise ValueError("with username give otp (and optionally password), or nothing else")
        return self


class RefreshRequest(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class LogoutRequest(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class TokenCreateRequest(Body):
    type: Literal["totp", "hotp", "webauthn"]
    algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1"
    digits: Literal[6, 8] = 6
    period: Literal[30, 60] = 30
    description: Annotated[Text, Field(max_length=128)] = ""

    @model_validator(mode="after")
    def _otp_options_only_for_otp(self) -> TokenCreateRequest:
        is_default = (self.algorithm, self.digits, self.period) == ("SHA1", 6, 30)
        if self.type == "webauthn" and not is_default:
            raise ValueError("algorithm, digits and period apply to totp and hotp only")
        return self


class TokenActivateRequest(Body):
    otp: Code | None = None
    credential: Credential | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> TokenActivateRequest:
        if (self.otp is None) == (self.credential is None):
            raise ValueError("give exactly one of otp or credential")
        return self


class ClientCreateRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    audience: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    allow: list[Literal["otp", "fob", "webauthn"]] | None = None
    redirect_uris: list[Annotated[Text, Field(min_length=1, max_length=2000)]] = []
    public: bool = False
    require: Literal["mfa", "phishing-resistant"] | None = None
    first_party: bool = False


class TemporaryCodeRequest(Body):
    ttl: Annotated[int, Field(ge=60, le=30 * 86_400, description="seconds the code stays valid")] = 3600


class UserCreateRequest(Body):
    username: Username
    password: Password | None = None
    role: Literal["user", "admin"] = "user"


class ResyncRequest(Body):
    otp1: Code
    otp2: Code


class AssignRequest(Body):
    username: Username


class PageQuery(Query):
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0


class UserListQuery(PageQuery):
    pass


class TokenListQuery(PageQuery):
    username: Username | None = None
    type: Literal["totp", "hotp", "webauthn", "fob"] | None = None
    state: Literal["pending", "active", "disabled"] | None = None
    locked: bool | None = None
    unassigned: bool | None = None
    serial: Annotated[Text, Field(max_length=64)] | None = None


class AuditQuery(PageQuery):
    actor: Annotated[Text, Field(max_length=64)] | None = None
    action: Annotated[Text, Field(max_length=64)] | None = None
    result: Literal["success", "failure"] | None = None
    target: Annotated[Text, Field(max_length=128)] | None = None
    since: float | None = None
    until: float | None = None


class PasswordChangeRequest(Body):
    current_password: Annotated[str, Field(max_length=1024, description="empty for a user who has none")]
    new_password: Password


class PasswordResetRequest(Body):
    password: Password
