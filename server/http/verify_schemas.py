"""The verify body (API.md, Sessions): a union of closed forms, told apart by the members a body names.

A transaction's answer (one model per answer member, so the document names each), a registered client's
one-step code, or a username alone to start a transaction; `PageVerifyRequest`, the pages' verify, takes the
answers only. A callable discriminator picks the form; the chosen model, closed as every `Body` is, refuses
what does not belong to it. pydantic's own JSON Schema of the union (a `oneOf` of closed objects) is the
OpenAPI document's.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Discriminator, Field, RootModel, Tag, model_validator
from pydantic.json_schema import SkipJsonSchema

from server.http.schemas import (
    Body,
    Code,
    Credential,
    Password,
    RecoveryCode,
    TransactionId,
    Username,
    refuse_nulls,
)


def _omittable(schema: dict[str, Any]) -> None:
    """An optional member given a value or left out (`refuse_nulls`): its schema states no null default."""
    schema.pop("default", None)


class TransactionAnswerRequest(Body):
    """A second-factor transaction answered: `transaction_id` and one answer, the member each subclass adds
    (named by `answer_field`, which is also the verify metrics' `answer` label)."""

    answer_field: ClassVar[str]

    transaction_id: TransactionId

    @property
    def answer(self) -> str | dict[str, Any]:
        value: str | dict[str, Any] = getattr(self, self.answer_field)
        return value


class OtpAnswerRequest(TransactionAnswerRequest):
    answer_field: ClassVar[str] = "otp"
    otp: Code


class FobAnswerRequest(TransactionAnswerRequest):
    answer_field: ClassVar[str] = "fob_response"
    fob_response: Code


class CredentialAnswerRequest(TransactionAnswerRequest):
    answer_field: ClassVar[str] = "credential"
    credential: Credential


class RecoveryCodeAnswerRequest(TransactionAnswerRequest):
    answer_field: ClassVar[str] = "recovery_code"
    recovery_code: RecoveryCode


class TemporaryCodeAnswerRequest(TransactionAnswerRequest):
    answer_field: ClassVar[str] = "temporary_code"
    temporary_code: RecoveryCode


ANSWER_MODELS: tuple[type[TransactionAnswerRequest], ...] = (
    OtpAnswerRequest,
    FobAnswerRequest,
    CredentialAnswerRequest,
    RecoveryCodeAnswerRequest,
    TemporaryCodeAnswerRequest,
)
ANSWER_FIELDS = tuple(model.answer_field for model in ANSWER_MODELS)


class OneStepVerifyRequest(Body):
    """A user's one-time code checked in one step (optionally with the password), by a registered client."""

    answer_field: ClassVar[str] = "otp"

    username: Username
    otp: Code
    password: Password | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_omittable)

    @model_validator(mode="after")
    def _password_not_null(self) -> OneStepVerifyRequest:
        refuse_nulls(self)
        return self


class ChallengeStartRequest(Body):
    """A username alone: a registered client starts a transaction for that user."""

    username: Username


def _answer_form(body: Any) -> str | None:
    """The model a transaction's answer body is, by the members it names (their values are the model's
    business): `transaction_id` and exactly one answer. None, refused, for any other set."""
    if not isinstance(body, dict) or "transaction_id" not in body:
        return None
    given = [model for model in ANSWER_MODELS if model.answer_field in body]
    return given[0].__name__ if len(given) == 1 else None


def _verify_form(body: Any) -> str | None:
    """As `_answer_form`, and without `transaction_id`: `username` with `otp` is one step, `username` without
    it starts a transaction (the chosen model, closed, refuses any other member)."""
    if isinstance(body, dict) and "transaction_id" not in body and "username" in body:
        return (OneStepVerifyRequest if "otp" in body else ChallengeStartRequest).__name__
    return _answer_form(body)


# The answer forms as union members, each tagged with its model's name (what the discriminators return).
TaggedAnswer = (
    Annotated[OtpAnswerRequest, Tag(OtpAnswerRequest.__name__)]
    | Annotated[FobAnswerRequest, Tag(FobAnswerRequest.__name__)]
    | Annotated[CredentialAnswerRequest, Tag(CredentialAnswerRequest.__name__)]
    | Annotated[RecoveryCodeAnswerRequest, Tag(RecoveryCodeAnswerRequest.__name__)]
    | Annotated[TemporaryCodeAnswerRequest, Tag(TemporaryCodeAnswerRequest.__name__)]
)

_ANSWER_FORMS = f"transaction_id with exactly one of {', '.join(ANSWER_FIELDS)}"
PAGE_VERIFY_MEMBERS = frozenset(name for model in ANSWER_MODELS for name in model.model_fields)
VERIFY_MEMBERS = frozenset(
    [*PAGE_VERIFY_MEMBERS, *OneStepVerifyRequest.model_fields, *ChallengeStartRequest.model_fields]
)


def refuse_unknown_members(body: Any, known: frozenset[str]) -> Any:
    """Before a union's discriminator: a member that no form has is named, which a refused form would not."""
    if isinstance(body, dict):
        unknown = sorted(str(name) for name in body if name not in known)
        if unknown:
            # A lone surrogate (valid in a JSON string, not in UTF-8) is shown escaped.
            names = ", ".join(unknown).encode("utf-8", "backslashreplace").decode("utf-8")
            raise ValueError(f"{names[:200]}: not a member of this body (extra inputs)")
    return body


class PageVerifyRequest(
    RootModel[
        Annotated[
            TaggedAnswer,
            Discriminator(
                _answer_form, custom_error_type="verify_form", custom_error_message=f"give {_ANSWER_FORMS}"
            ),
        ]
    ]
):
    """A transaction's answer (the pages' verify): one of the forms, told apart by their members."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_members_only(cls, body: Any) -> Any:
        return refuse_unknown_members(body, PAGE_VERIFY_MEMBERS)


class VerifyRequest(
    RootModel[
        Annotated[
            TaggedAnswer
            | Annotated[OneStepVerifyRequest, Tag(OneStepVerifyRequest.__name__)]
            | Annotated[ChallengeStartRequest, Tag(ChallengeStartRequest.__name__)],
            Discriminator(
                _verify_form,
                custom_error_type="verify_form",
                custom_error_message=f"give {_ANSWER_FORMS}; or username, with otp (and optionally password) "
                "or alone",
            ),
        ]
    ]
):
    """One of: a transaction answered (otp, fob_response, credential, recovery_code or temporary_code); a
    one-step `username` + `otp` (+ optional `password`); or `username` alone to start a transaction. The last
    two need client authentication. The members given tell the forms apart."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_members_only(cls, body: Any) -> Any:
        return refuse_unknown_members(body, VERIFY_MEMBERS)
