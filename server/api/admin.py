"""Administration: users, any user's tokens, the audit log (API.md, Admin). Admin sessions only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from server.db import current_session
from server.http.context import actor, runtime
from server.http.contract import Link, operation
from server.http.responses import (
    AdminTokenPage,
    AdminTokenView,
    AuditPage,
    TemporaryCode,
    UserDetail,
    UserPage,
    UserView,
)
from server.http.schemas import (
    TOKEN_ID,
    USERNAME_PATH,
    AssignRequest,
    AuditQuery,
    ResyncRequest,
    TemporaryCodeRequest,
    TokenListQuery,
    UserCreateRequest,
    UserListQuery,
)
from server.services import audit, recovery_codes, tokens, users
from server.services.sessions import Principal

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

NOT_ADMIN = "Not an administrator's full session"


@operation(
    bp,
    "/users",
    "GET",
    access="admin",
    query=UserListQuery,
    summary="List users",
    model=UserPage,
    responses={200: "users, total", 403: NOT_ADMIN},
)
def list_users(query: UserListQuery, principal: Principal) -> Any:
    page = users.list_users(current_session(), limit=query.limit, offset=query.offset)
    return {"users": [users.user_view(user) for user in page.users], "total": page.total}


@operation(
    bp,
    "/users",
    "POST",
    access="admin_step_up",
    body=UserCreateRequest,
    summary="Create a user",
    model=UserView,
    links={
        name: Link(f"admin.{view}", {"username": "$response.body#/username"})
        for name, view in (
            ("ShowUser", "show_user"),
            ("DisableUser", "disable_user"),
            ("EnableUser", "enable_user"),
            ("IssueTemporaryCode", "temporary_code"),
            ("DeleteUser", "delete_user"),
        )
    },
    responses={201: "The user", 409: "The name is taken", 422: "Invalid name or password"},
)
def create_user(body: UserCreateRequest, principal: Principal) -> Any:
    user = users.create_user(
        current_session(),
        runtime(),
        username=body.username,
        password=body.password,
        role=body.role,
        actor=actor(),
    )
    return users.user_view(user), 201


@operation(
    bp,
    "/users/<username>",
    "GET",
    path_schemas={"username": USERNAME_PATH},
    access="admin",
    summary="Show a user and their tokens",
    model=UserDetail,
    responses={200: "The user with tokens", 404: "No such user"},
)
def show_user(username: str, principal: Principal) -> Any:
    rt, user = runtime(), users.get_user(current_session(), username=username)
    owned = tokens.user_tokens(current_session(), rt, user=user)
    return {
        **users.user_view(user),
        "tokens": [tokens.token_view(rt, token, owner=user.username, admin=True) for token in owned],
    }


@operation(
    bp,
    "/users/<username>/disable",
    "POST",
    path_schemas={"username": USERNAME_PATH},
    access="admin",
    summary="Disable a user (sessions revoked)",
    model=UserView,
    responses={200: "The user", 404: "No such user"},
)
def disable_user(username: str, principal: Principal) -> Any:
    user = users.set_disabled(current_session(), runtime(), username=username, disabled=True, actor=actor())
    return users.user_view(user)


@operation(
    bp,
    "/users/<username>/enable",
    "POST",
    path_schemas={"username": USERNAME_PATH},
    access="admin_step_up",
    summary="Enable a disabled user",
    model=UserView,
    responses={200: "The user", 404: "No such user"},
)
def enable_user(username: str, principal: Principal) -> Any:
    user = users.set_disabled(current_session(), runtime(), username=username, disabled=False, actor=actor())
    return users.user_view(user)


@operation(
    bp,
    "/users/<username>/temporary-code",
    "POST",
    path_schemas={"username": USERNAME_PATH},
    access="admin_step_up",
    body=TemporaryCodeRequest,
    summary="Issue a temporary code: one login without the user's lost token, whose session may enroll "
    "a replacement (shown once; replaces an earlier code)",
    model=TemporaryCode,
    responses={201: "code, expires_at", 404: "No such user", 422: "ttl out of range"},
)
def temporary_code(username: str, body: TemporaryCodeRequest, principal: Principal) -> Any:
    session, rt = current_session(), runtime()
    issued = recovery_codes.issue_temporary_code(
        session, rt, user=users.get_user(session, username=username), ttl_seconds=body.ttl, actor=actor()
    )
    return {"code": issued.code, "expires_at": issued.expires_at}, 201, {"Cache-Control": "no-store"}


@operation(
    bp,
    "/users/<username>",
    "DELETE",
    path_schemas={"username": USERNAME_PATH},
    access="admin_step_up",
    summary="Delete a user and their tokens",
    responses={204: "Deleted", 404: "No such user"},
)
def delete_user(username: str, principal: Principal) -> Any:
    users.delete_user(current_session(), runtime(), username=username, actor=actor())
    return Response(status=204)


@operation(
    bp,
    "/tokens",
    "GET",
    access="admin",
    query=TokenListQuery,
    summary="List tokens of any user",
    model=AdminTokenPage,
    responses={200: "tokens, total"},
)
def list_tokens(query: TokenListQuery, principal: Principal) -> Any:
    rt = runtime()
    filters = tokens.TokenFilter(
        username=query.username,
        type=query.type,
        state=query.state,
        locked=query.locked,
        unassigned=query.unassigned,
        serial=query.serial,
    )
    page = tokens.list_all_tokens(
        current_session(), rt, filters=filters, limit=query.limit, offset=query.offset
    )
    return {
        "tokens": [tokens.token_view(rt, token, owner=owner, admin=True) for token, owner in page.tokens],
        "total": page.total,
    }


def _admin_view(token: Any) -> Any:
    return tokens.token_view(
        runtime(), token, owner=users.username_of(current_session(), user_id=token.user_id), admin=True
    )


@operation(
    bp,
    "/tokens/<token_id>/disable",
    "POST",
    path_schemas={"token_id": TOKEN_ID},
    access="admin",
    summary="Disable a token",
    model=AdminTokenView,
    responses={200: "The token", 404: "No such token", 409: "Pending"},
)
def disable_token(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id)
    return _admin_view(
        tokens.set_token_enabled(current_session(), runtime(), token=token, enabled=False, actor=actor())
    )


@operation(
    bp,
    "/tokens/<token_id>/enable",
    "POST",
    path_schemas={"token_id": TOKEN_ID},
    access="admin_step_up",
    summary="Enable a disabled token",
    model=AdminTokenView,
    responses={200: "The token", 404: "No such token", 409: "Pending"},
)
def enable_token(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id)
    return _admin_view(
        tokens.set_token_enabled(current_session(), runtime(), token=token, enabled=True, actor=actor())
    )


@operation(
    bp,
    "/tokens/<token_id>/unlock",
    "POST",
    path_schemas={"token_id": TOKEN_ID},
    access="admin",
    summary="Reset a token's failure counter",
    model=AdminTokenView,
    responses={200: "The token", 404: "No such token"},
)
def unlock_token(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id)
    return _admin_view(tokens.unlock(current_session(), runtime(), token=token, actor=actor()))


@operation(
    bp,
    "/tokens/<token_id>/resync",
    "POST",
    path_schemas={"token_id": TOKEN_ID},
    access="admin",
    body=ResyncRequest,
    summary="Resynchronise a TOTP/HOTP token from two consecutive codes",
    model=AdminTokenView,
    responses={200: "The token with its drift", 422: "The codes were not found consecutively"},
)
def resync_token(token_id: str, body: ResyncRequest, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id)
    token = tokens.resync_token(
        current_session(), runtime(), token=token, first_code=body.otp1, second_code=body.otp2, actor=actor()
    )
    return _admin_view(token)


@operation(
    bp,
    "/tokens/<token_id>/assign",
    "POST",
    path_schemas={"token_id": TOKEN_ID},
    access="admin_step_up",
    body=AssignRequest,
    summary="Assign an imported, unassigned token to a user",
    model=AdminTokenView,
    responses={200: "The token", 404: "No such token or user", 409: "Already assigned"},
)
def assign_token(token_id: str, body: AssignRequest, principal: Principal) -> Any:
    user = users.get_user(current_session(), username=body.username)
    token = tokens.get_token(current_session(), token_id=token_id)
    return _admin_view(
        tokens.assign_token(current_session(), runtime(), token=token, user=user, actor=actor())
    )


@operation(
    bp,
    "/tokens/<token_id>",
    "DELETE",
    path_schemas={"token_id": TOKEN_ID},
    access="admin_step_up",
    summary="Delete a token",
    responses={204: "Deleted", 404: "No such token"},
)
def delete_token(token_id: str, principal: Principal) -> Any:
    token = tokens.get_token(current_session(), token_id=token_id)
    tokens.delete_token(current_session(), runtime(), token=token, actor=actor())
    return Response(status=204)


@operation(
    bp,
    "/audit",
    "GET",
    access="admin",
    query=AuditQuery,
    summary="The audit log, newest first",
    model=AuditPage,
    responses={200: "events, total"},
)
def audit_log(query: AuditQuery, principal: Principal) -> Any:
    page = audit.list_events(
        current_session(),
        actor=query.actor,
        action=query.action,
        result=query.result,
        target=query.target,
        since=query.since,
        until=query.until,
        limit=query.limit,
        offset=query.offset,
    )
    return {"events": [audit.event_view(event) for event in page.events], "total": page.total}
