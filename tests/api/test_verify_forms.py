"""The verify body's forms (API.md, Sessions): which form a body is follows from the members it names, and a
body of no form, or of two at once, is a 422 `validation_error` before anything is looked up."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, ValidationError

from server.http.auth import CSRF_COOKIE, CSRF_HEADER
from server.http.verify_schemas import PageVerifyRequest, TransactionAnswerRequest, VerifyRequest
from tests.accounts import PASSWORD, Accounts

VALUES: dict[str, Any] = {
    "transaction_id": "abc",
    "username": "alice",
    "password": PASSWORD,
    "otp": "123456",
    "fob_response": "12345678",
    "credential": {"id": "AAAA", "type": "public-key", "response": {}},
    "recovery_code": "abcd-efgh",
    "temporary_code": "abcd-efgh",
}
ANSWERS = ("otp", "fob_response", "credential", "recovery_code", "temporary_code")
# API.md, Sessions: the member sets a verify body may have; the pages take a transaction's answer only.
PAGE_FORMS = {frozenset({"transaction_id", answer}) for answer in ANSWERS}
API_FORMS = PAGE_FORMS | {
    frozenset({"username", "otp"}),
    frozenset({"username", "otp", "password"}),
    frozenset({"username"}),
}
# Bodies that name members of two forms, or of none.
AMBIGUOUS: list[dict[str, Any]] = [
    {"transaction_id": "abc", "otp": "123456", "fob_response": "12345678"},
    {"transaction_id": "abc", "recovery_code": "abcd-efgh", "temporary_code": "abcd-efgh"},
    {"transaction_id": "abc", "username": "alice", "otp": "123456"},
    {"transaction_id": "abc"},
    {"username": "alice", "fob_response": "12345678"},
    {"username": "alice", "password": PASSWORD},
    {"username": "alice", "otp": "123456", "password": None},
    {"otp": "123456"},
    {},
]
PAGE_ORIGIN = "http://localhost:5000"


def accepted(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("model", "forms"), [(VerifyRequest, API_FORMS), (PageVerifyRequest, PAGE_FORMS)])
def test_a_body_is_accepted_exactly_when_its_members_are_a_form(
    model: type[BaseModel], forms: set[frozenset[str]]
) -> None:
    """Every set of the members, with valid values, and with each member given as null instead."""
    wrong = []
    for size in range(len(VALUES) + 1):
        for names in itertools.combinations(VALUES, size):
            body = {name: VALUES[name] for name in names}
            if accepted(model, body) != (frozenset(names) in forms):
                wrong.append(body)
            wrong += [null for name in names if accepted(model, null := {**body, name: None})]
    assert not wrong, f"{len(wrong)} bodies answered wrongly, first: {wrong[:5]}"


def test_the_parsed_form_carries_its_answer() -> None:
    for answer in ANSWERS:
        body = VerifyRequest.model_validate({"transaction_id": "abc", answer: VALUES[answer]}).root
        assert isinstance(body, TransactionAnswerRequest)
        assert (body.answer_field, body.answer) == (answer, VALUES[answer])


@pytest.mark.parametrize("body", AMBIGUOUS)
def test_an_ambiguous_body_is_refused_before_any_lookup(accounts: Accounts, body: dict[str, Any]) -> None:
    """No client credentials are sent: the form is refused before the client (or the user) is looked at."""
    response = accounts.client.post("/api/v1/verify", json=body, headers={"Authorization": ""})
    assert (response.status_code, response.json["code"]) == (422, "validation_error")


@pytest.mark.parametrize(
    "body", [*AMBIGUOUS, {"username": "alice"}, {"username": "alice", "otp": "123456"}], ids=repr
)
def test_the_pages_refuse_every_body_but_a_transaction_answer(
    accounts: Accounts, body: dict[str, Any]
) -> None:
    accounts.user_with_phone("alice")
    accounts.client.set_cookie(CSRF_COOKIE, "csrf-value")
    headers = {CSRF_HEADER: "csrf-value", "Origin": PAGE_ORIGIN}
    response = accounts.client.post("/web/session/verify", json=body, headers=headers)
    assert (response.status_code, response.json["code"]) == (422, "validation_error")


def _verify_count(answer: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("tokenward_verify_total", {"answer": answer, "outcome": outcome}) or 0.0


@pytest.mark.parametrize("answer", ANSWERS)
def test_each_answer_is_counted_under_its_member_name(accounts: Accounts, answer: str) -> None:
    before = _verify_count(answer, "transaction_expired")
    body = {"transaction_id": "no-such-transaction", answer: VALUES[answer]}
    response = accounts.client.post("/api/v1/verify", json=body)
    assert response.json["code"] == "transaction_expired"
    assert _verify_count(answer, "transaction_expired") == before + 1


def test_a_one_step_code_is_counted_as_otp(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    before = _verify_count("otp", "invalid_credentials")
    body = {"username": "alice", "otp": phone.code(accounts.clock.now()), "password": "wrong password"}
    response = accounts.client.post("/api/v1/verify", json=body)
    assert response.json["code"] == "invalid_credentials"
    assert _verify_count("otp", "invalid_credentials") == before + 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"transaction_id": "abc", "otpp": "123456"}, "otpp"),
        ({"username": "alice", "otp": "123456", "pasword": PASSWORD}, "pasword"),
        ({"transaction_id": "abc", "otp": "123456", "\ud800": 1}, "\\ud800"),  # not UTF-8: shown escaped
    ],
)
def test_an_unknown_member_is_named(accounts: Accounts, body: dict[str, Any], named: str) -> None:
    response = accounts.client.post("/api/v1/verify", json=body, headers={"Authorization": ""})
    assert (response.status_code, response.json["code"]) == (422, "validation_error")
    assert named in response.json["detail"]
