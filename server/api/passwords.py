"""Passwords of local users: the user's own change (a recent second factor and the current password) and an
administrator's reset. Directory users change theirs in the directory (409 password_in_directory)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from server.db import current_session
from server.http.context import actor, runtime
from server.http.contract import operation
from server.http.schemas import PasswordChangeRequest, PasswordResetRequest
from server.services import password_changes
from server.services.sessions import Principal

bp = Blueprint("passwords", __name__, url_prefix="/api/v1")


@operation(
    bp,
    "/me/password",
    "POST",
    access="step_up",
    rate_limited=True,  # guesses of the current password share the user's sign-in bucket
    body=PasswordChangeRequest,
    summary="Change one's own password (a second factor answered recently; the user's other sessions end)",
    responses={
        204: "Changed; this session stays, the user's others end",
        401: "invalid_credentials: the current password is not right",
        403: "step_up_required: answer a second factor again (POST /api/v1/step-up)",
        409: "password_in_directory: a directory user changes the password in the directory",
        422: "The new password does not meet the policy (8 to 1024 characters)",
    },
)
def change_own_password(body: PasswordChangeRequest, principal: Principal) -> Any:
    password_changes.change_own_password(
        current_session(),
        runtime(),
        user=principal.user,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_family_id=principal.family_id,
        actor=actor(),
    )
    return Response(status=204)


@operation(
    bp,
    "/admin/users/<username>/password",
    "POST",
    access="admin_step_up",
    body=PasswordResetRequest,
    summary="Reset a local user's password (every session of the user ends)",
    responses={
        204: "Reset",
        404: "No such user",
        409: "password_in_directory: the user's password is kept in the LDAP/AD directory",
        422: "The password does not meet the policy (8 to 1024 characters)",
    },
)
def reset_password(username: str, body: PasswordResetRequest, principal: Principal) -> Any:
    password_changes.reset_password(
        current_session(), runtime(), username=username, new_password=body.password, actor=actor()
    )
    return Response(status=204)
