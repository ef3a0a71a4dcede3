"""Login, verify, refresh, logout and `me` (API.md, Sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response

from server.db import begin_reads, current_session
from server.errors import TokenwardError
from server.http import metrics
from server.http.auth import authenticate_client, authenticate_login_form
from server.http.context import actor, runtime
from server.http.contract import operation
from server.http.responses import Challenge, LoginAnswer, Me, Session, VerifyAnswer
from server.http.schemas import LoginRequest, LogoutRequest, PasskeyLoginRequest, RefreshRequest
from server.http.verify_schemas import (
    ChallengeStartRequest,
    OneStepVerifyRequest,
    TransactionAnswerRequest,
    VerifyRequest,
)
from server.services import login, sessions, tokens, users
from server.services.clients import Client, ClientRow
from server.services.one_step import verify_one_step
from server.services.sessions import IssuedSession, Principal
from server.services.verify import verify_transaction

bp = Blueprint("sessions", __name__, url_prefix="/api/v1")

SESSION = "A session: access_token, token_type, expires_in, refresh_token, amr, acr, scope"


def challenge_json(challenge: login.SecondFactorChallenge, status: str = "second_factor") -> dict[str, Any]:
    return {
        "status": status,
        "transaction_id": challenge.transaction_id,
        "expires_in": challenge.expires_in,
        "methods": challenge.methods,
        **challenge.challenges,
    }


@operation(
    bp,
    "/login",
    "POST",
    body=LoginRequest,
    summary="Check a password and start the second factor",
    model=LoginAnswer,
    responses={
        200: "A second-factor transaction, or an enroll-only session",
        401: "Invalid credentials",
        429: "Rate limited",
        503: "The user directory (LDAP/AD) did not answer (`directory_unavailable`, with Retry-After)",
    },
    rate_limited=True,
)
def login_password(body: LoginRequest) -> Any:
    result = login.login_with_password(
        current_session(),
        runtime(),
        username=body.username,
        password=body.password,
        actor=actor(),
    )
    if isinstance(result, IssuedSession):
        return {"status": "enroll", **result.as_json()}
    return challenge_json(result)


@operation(
    bp,
    "/login/passkey",
    "POST",
    body=PasskeyLoginRequest,
    summary="Start a usernameless login with a discoverable credential (passkey)",
    model=Challenge,
    responses={200: "A transaction with WebAuthn request options (no allowCredentials)", 429: "Rate limited"},
    rate_limited=True,
)
def passkey_login(body: PasskeyLoginRequest) -> Any:
    return challenge_json(login.start_passkey_login(current_session(), runtime(), actor=actor()))


@operation(
    bp,
    "/verify",
    "POST",
    body=VerifyRequest,
    client_auth=True,
    summary="Answer a second-factor transaction; or, as a registered client (HTTP Basic), verify a user's "
    "one-time code in one step or start a transaction for a username",
    model=VerifyAnswer,
    responses={
        200: "A session, or a transaction (`username` alone)",
        401: "The answer is not valid, or client authentication failed (`invalid_client`)",
        403: "Token locked, method not allowed for the client, or the client needs a stronger sign-in",
        429: "Rate limited",
        503: "The user directory did not answer a password check (`directory_unavailable`, with Retry-After)",
    },
    rate_limited=True,
)
def verify(body: VerifyRequest) -> Any:
    match body.root:
        case ChallengeStartRequest(username=username):
            client = authenticate_client(required=True)  # before any user is looked up
            challenge = login.start_challenge(
                current_session(), runtime(), username=username, client=client, actor=actor()
            )
            return challenge_json(challenge, status="challenge")
        case OneStepVerifyRequest() as one_step:
            begin_reads(current_session())  # the client and the user are read before the write lock (SQLite)
            return run_one_step(one_step, client=authenticate_login_form()).as_json()
        case answer:
            return run_verify(answer, client=authenticate_client(required=False)).as_json()


def run_verify(body: TransactionAnswerRequest, *, client: Client | None) -> IssuedSession:
    """Runs a transaction's answer, timed in the verify metrics; shared by `POST /api/v1/verify` and the
    pages' `POST /web/session/verify`."""
    return _timed(
        body.answer_field,
        lambda: verify_transaction(
            current_session(),
            runtime(),
            transaction_id=body.transaction_id,
            answer_field=body.answer_field,
            answer=body.answer,
            client=client,
            actor=actor(),
        ),
    )


def run_one_step(body: OneStepVerifyRequest, *, client: ClientRow) -> IssuedSession:
    """Runs a registered client's one-step code, timed in the verify metrics."""
    return _timed(
        body.answer_field,
        lambda: verify_one_step(
            current_session(),
            runtime(),
            username=body.username,
            code=body.otp,
            password=body.password,
            client=client,
            actor=actor(),
        ),
    )


def _timed(answer_field: str, attempt: Callable[[], IssuedSession]) -> IssuedSession:
    started = time.perf_counter()
    try:
        issued = attempt()
    except TokenwardError as err:
        metrics.observe_verify(answer_field, err.code, time.perf_counter() - started)
        raise
    metrics.observe_verify(answer_field, "success", time.perf_counter() - started)
    return issued


@operation(
    bp,
    "/step-up",
    "POST",
    access="user",
    summary="Start answering the second factor again (step-up), for actions that need a recent one",
    model=Challenge,
    responses={
        200: "A second-factor transaction; its answer (POST /verify) gives a session that replaces this one",
        401: "Not signed in",
    },
)
def step_up(principal: Principal) -> Any:
    challenge = login.start_step_up(current_session(), runtime(), principal=principal, actor=actor())
    return challenge_json(challenge)


@operation(
    bp,
    "/token/refresh",
    "POST",
    body=RefreshRequest,
    client_auth=True,
    summary="Rotate a refresh token; one a registered client was issued (one-step verify) only with that "
    "client's HTTP Basic credentials, one of an OpenID Connect relying party only at /oauth2/token",
    model=Session,
    responses={
        200: SESSION,
        401: "Invalid, expired or reused refresh token (or a directory user the directory no longer lets "
        "in); `invalid_client` when the token was issued to a registered client and the call does not "
        "authenticate as it (HTTP Basic), or gives wrong client credentials",
        503: "The user directory did not answer (`directory_unavailable`); the refresh token stays unspent",
    },
)
def refresh(body: RefreshRequest) -> Any:
    client = authenticate_client(required=False)  # before the token is looked at
    return sessions.refresh_session(
        current_session(), runtime(), refresh_token=body.refresh_token, actor=actor(), client=client
    ).as_json()


@operation(
    bp,
    "/logout",
    "POST",
    body=LogoutRequest,
    access="any",
    summary="Revoke this session at once",
    responses={204: "Revoked", 401: "Not signed in"},
)
def logout(body: LogoutRequest, principal: Principal) -> Any:
    sessions.logout(
        current_session(), runtime(), principal=principal, refresh_token=body.refresh_token, actor=actor()
    )
    return Response(status=204)


@operation(
    bp,
    "/me",
    "GET",
    access="any",
    summary="The signed-in user",
    model=Me,
    responses={200: "username, role, amr, acr, auth_time, scope, tokens", 401: "Not signed in"},
)
def me(principal: Principal) -> Any:
    rt = runtime()
    return {
        **users.user_view(principal.user),
        "amr": principal.amr,
        "acr": principal.claims.get("acr"),
        "auth_time": principal.claims.get("auth_time"),
        "scope": principal.scope,
        "tokens": [
            tokens.token_view(rt, token)
            for token in tokens.user_tokens(current_session(), rt, user=principal.user)
        ],
    }
