"""Self-service tokens: enroll, activate, list, remove (API.md, Tokens)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from server.db import current_session
from server.errors import ValidationFailed
from server.http.context import actor, runtime
from server.http.contract import Link, operation
from server.http.responses import TokenActivated, TokenCreated, TokenList
from server.http.schemas import TOKEN_ID, TokenActivateRequest, TokenCreateRequest
from server.services import enrollment, qr, tokens, webauthn
from server.services.sessions import Principal

bp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens")


@operation(
    bp,
    "",
    "POST",
    body=TokenCreateRequest,
    access="enroll",
    summary="Start enrolling a token",
    model=TokenCreated,
    links={
        name: Link(endpoint, {"token_id": "$response.body#/id"})
        for name, endpoint in (
            ("QrCode", "tokens.token_qr"),
            ("Activate", "tokens.activate_token"),
            ("Remove", "tokens.delete_token"),
            ("AdminDisable", "admin.disable_token"),
            ("AdminEnable", "admin.enable_token"),
            ("AdminUnlock", "admin.unlock_token"),
            ("AdminResync", "admin.resync_token"),
            ("AdminAssign", "admin.assign_token"),
            ("AdminDelete", "admin.delete_token"),
        )
    },
    responses={
        201: "The pending token: otpauth_uri, secret and QR (TOTP/HOTP) or WebAuthn creation options",
        409: "Too many tokens",
        422: "Invalid options",
    },
)
def create_token(body: TokenCreateRequest, principal: Principal) -> Any:
    rt = runtime()
    if body.type == "webauthn":
        key = webauthn.begin_registration(
            current_session(), rt, user=principal.user, description=body.description, actor=actor()
        )
        view = {
            "id": key.token.id,
            "type": "webauthn",
            "state": key.token.state,
            "expires_in": key.expires_in,
        }
        return {**view, **key.options}, 201, {"Cache-Control": "no-store"}
    started = enrollment.begin_otp_enrollment(
        current_session(),
        rt,
        user=principal.user,
        token_type=body.type,
        algorithm=body.algorithm,
        digits=body.digits,
        period=body.period,
        description=body.description,
        actor=actor(),
    )
    view = {
        "id": started.token.id,
        "type": started.token.type,
        "state": started.token.state,
        "otpauth_uri": started.otpauth_uri,
        "secret": started.secret,
        "qr_svg": qr.qr_svg(started.otpauth_uri),
        "expires_in": started.expires_in,
    }
    return view, 201, {"Cache-Control": "no-store"}


@operation(
    bp,
    "/<token_id>/qr.png",
    "GET",
    access="session",
    summary="QR code (PNG) of a pending token's URI",
    path_schemas={"token_id": TOKEN_ID},
    responses={200: "image/png", 404: "No such token", 409: "Not pending"},
    response_media="image/png",
)
def token_qr(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id, owner=principal.user)
    uri = enrollment.pending_otpauth_uri(runtime(), token=token, user=principal.user)
    return Response(qr.qr_png(uri), mimetype="image/png", headers={"Cache-Control": "no-store"})


@operation(
    bp,
    "/<token_id>/activate",
    "POST",
    body=TokenActivateRequest,
    access="session",
    summary="Activate a pending token with its first code (or the WebAuthn credential)",
    model=TokenActivated,
    path_schemas={"token_id": TOKEN_ID},
    responses={
        200: "The token, active",
        401: "Wrong code",
        404: "No such token",
        409: "Not pending",
        410: "The enrollment expired",
    },
)
def activate_token(token_id: str, body: TokenActivateRequest, principal: Principal) -> Any:
    session, rt = current_session(), runtime()
    token = tokens.get_token(session, token_id=token_id, owner=principal.user)
    if token.type == "webauthn" and body.credential is not None:
        token = webauthn.complete_registration(
            session, rt, token=token, credential=body.credential, actor=actor()
        )
    elif token.type in tokens.OTP_TYPES and body.otp is not None:
        token = enrollment.activate_otp(session, rt, token=token, code=body.otp, actor=actor())
    else:
        raise ValidationFailed("A TOTP/HOTP token is activated with an otp, a security key with a credential")
    return {"id": token.id, "state": token.state}


@operation(
    bp,
    "",
    "GET",
    access="session",
    summary="The caller's tokens (no secrets)",
    model=TokenList,
    responses={200: "A list of tokens"},
)
def list_tokens(principal: Principal) -> Any:
    rt = runtime()
    return {
        "tokens": [
            tokens.token_view(rt, token)
            for token in tokens.user_tokens(current_session(), rt, user=principal.user)
        ]
    }


@operation(
    bp,
    "/<token_id>",
    "DELETE",
    access="step_up",
    summary="Remove one of the caller's tokens",
    path_schemas={"token_id": TOKEN_ID},
    responses={204: "Removed", 404: "No such token"},
)
def delete_token(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id, owner=principal.user)
    tokens.delete_token(current_session(), runtime(), token=token, actor=actor())
    return Response(status=204)
