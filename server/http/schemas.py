"""Request bodies and query strings, validated with pydantic (strict: a wrong JSON type is a 422).

Free text is refused when it holds control characters: they have no business in a name or description and
PostgreSQL cannot store NUL.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from server.services.clients import CLIENT_NAME as CLIENT_NAME_PATTERN
from server.services.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from server.services.users import USERNAME_PATTERN

# What `_printable` lets through, for the document (a JSON Schema cannot name lone surrogates, which JSON
# parsers other than Python's refuse anyway).
CONTROL_CHARACTERS = "\\u0000-\\u001f\\u007f-\\u009f"
PRINTABLE_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
# An absolute http(s) URI with a host, without fragment or wildcard (server.services.clients checks it
# again). A host in brackets (an IPv6 literal) is left out: only the server can tell one is an address.
_URI_CHARACTER = f"[^#*\\s{CONTROL_CHARACTERS}]"
_USERINFO_CHARACTER = f"[^/?#*\\[\\]@\\s{CONTROL_CHARACTERS}]"
_HOST_CHARACTER = f"[^/?#*\\[\\]@:\\s{CONTROL_CHARACTERS}]"
REDIRECT_URI_PATTERN = (
    f"^https?://({_USERINFO_CHARACTER}*@)?{_HOST_CHARACTER}+(:[0-9]*)?([/?]{_URI_CHARACTER}*)?$"
)


def _printable(text: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise ValueError("control characters are not allowed")
    return text


def _integral(value: Any) -> Any:
    """JSON has one number type: `6.0` is the integer 6 to JSON Schema, and so it is here."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integral = BeforeValidator(_integral)
PrintableCheck = AfterValidator(_printable)
Text = Annotated[str, PrintableCheck, Field(json_schema_extra={"pattern": PRINTABLE_PATTERN})]
Username = Annotated[Text, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
Code = Annotated[Text, Field(min_length=1, max_length=32)]
TransactionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_TRANSACTION_IDS: TypeAdapter[str] = TypeAdapter(TransactionId)


def is_transaction_id(value: object) -> TypeGuard[str]:
    """Whether `value` passes as a `TransactionId` (checked before a body is, by the per-user rate limit)."""
    try:
        _TRANSACTION_IDS.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


RecoveryCode = Annotated[Text, Field(min_length=1, max_length=64)]
Credential = Annotated[dict[str, Any], Field(description="PublicKeyCredential JSON (WebAuthn L3 toJSON())")]
RedirectUri = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=2000,
        description="an absolute http(s) URI without fragment or wildcard",
        json_schema_extra={"pattern": REDIRECT_URI_PATTERN},
    ),
]

# Path parameters, as the document states them (a value outside them names nothing: 404).
TOKEN_ID: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
USERNAME_PATH: dict[str, Any] = {"type": "string", "pattern": USERNAME_PATTERN.pattern}
CLIENT_NAME: dict[str, Any] = {"type": "string", "pattern": CLIENT_NAME_PATTERN.pattern}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as a required member: X alone."""
    branches = [branch for branch in schema.get("anyOf", [schema]) if branch.get("type") != "null"]
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def forms_schema(schema: dict[str, Any], forms: list[tuple[list[str], list[str]]]) -> None:
    """Replaces a body's schema by the forms it may take, each (required, optional) member names: what a
    model validator enforces and a flat object schema cannot say. A member is given a value or left out
    (`refuse_nulls`): null would blur which form was meant."""
    properties = schema.pop("properties")
    for key in ("required", "additionalProperties", "type"):
        schema.pop(key, None)
    schema["anyOf"] = [
        _closed({name: _non_null(properties[name]) for name in [*required, *optional]}, required)
        for required, optional in forms
    ]


def refuse_nulls(body: BaseModel) -> None:
    """For bodies whose forms are told apart by which members are present (see `forms_schema`)."""
    nulls = sorted(name for name in body.model_fields_set if getattr(body, name) is None)
    if nulls:
        raise ValueError(f"{', '.join(nulls)}: give a value or leave it out (not null)")


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _activate_forms(schema: dict[str, Any]) -> None:
    forms_schema(schema, [(["otp"], []), (["credential"], [])])


class Query(BaseModel):
    """Query strings arrive as text, so these coerce (`?limit=10`) but still refuse unknown names."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginRequest(Body):
    username: Username
    password: Password


class PasskeyLoginRequest(Body):
    pass


class RefreshRequest(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class LogoutRequest(Body):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)] | None = None


def _token_create_forms(schema: dict[str, Any]) -> None:
    """A security key takes a description only (the OTP options at their defaults are tolerated)."""
    properties = schema["properties"]
    otp = {**properties, "type": {"enum": ["totp", "hotp"]}}
    key = {
        "type": {"const": "webauthn"},
        "algorithm": {"const": "SHA1"},
        "digits": {"const": 6},
        "period": {"const": 30},
        "description": properties["description"],
    }
    for key_ in ("properties", "required", "additionalProperties", "type"):
        schema.pop(key_, None)
    schema["anyOf"] = [_closed(otp, ["type"]), _closed(key, ["type"])]


class TokenCreateRequest(Body):
    model_config = ConfigDict(json_schema_extra=_token_create_forms)

    type: Literal["totp", "hotp", "webauthn"]
    algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1"
    digits: Annotated[Literal[6, 8], Integral] = 6
    period: Annotated[Literal[30, 60], Integral] = 30
    description: Annotated[Text, Field(max_length=128)] = ""

    @model_validator(mode="after")
    def _otp_options_only_for_otp(self) -> TokenCreateRequest:
        is_default = (self.algorithm, self.digits, self.period) == ("SHA1", 6, 30)
        if self.type == "webauthn" and not is_default:
            raise ValueError("algorithm, digits and period apply to totp and hotp only")
        return self


class TokenActivateRequest(Body):
    model_config = ConfigDict(json_schema_extra=_activate_forms)

    otp: Code | None = None
    credential: Credential | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> TokenActivateRequest:
        refuse_nulls(self)
        if (self.otp is None) == (self.credential is None):
            raise ValueError("give exactly one of otp or credential")
        return self


class ClientCreateRequest(Body):
    name: Annotated[str, Field(pattern=CLIENT_NAME_PATTERN.pattern)]
    audience: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    allow: list[Literal["otp", "fob", "webauthn"]] | None = None
    redirect_uris: list[RedirectUri] = []
    public: bool = False
    require: Literal["mfa", "phishing-resistant"] | None = None
    first_party: bool = False


class TemporaryCodeRequest(Body):
    ttl: Annotated[
        int, Field(ge=60, le=30 * 86_400, description="seconds the code stays valid"), Integral
    ] = 3600


class UserCreateRequest(Body):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN.pattern)]
    password: NewPassword | None = None
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
    new_password: NewPassword


class PasswordResetRequest(Body):
    password: NewPassword
