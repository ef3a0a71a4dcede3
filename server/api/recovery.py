"""Recovery codes: a signed-in user's set of single-use codes for when their factors are lost."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from server.db import current_session
from server.http.context import actor, runtime
from server.http.contract import operation
from server.http.responses import RecoveryCodes, RecoveryCodesLeft
from server.services import recovery_codes
from server.services.sessions import Principal

bp = Blueprint("recovery", __name__, url_prefix="/api/v1/recovery-codes")


@operation(
    bp,
    "",
    "POST",
    access="step_up",
    summary="Create a new set of recovery codes (shown once; any earlier set stops working)",
    responses={201: "codes: ten single-use codes"},
    model=RecoveryCodes,
)
def create_codes(principal: Principal) -> Any:
    codes = recovery_codes.create_recovery_codes(
        current_session(), runtime(), user=principal.user, actor=actor()
    )
    return {"codes": codes}, 201, {"Cache-Control": "no-store"}


@operation(
    bp,
    "",
    "GET",
    access="user",
    summary="How many recovery codes are left",
    responses={200: "remaining: the number of unused codes"},
    model=RecoveryCodesLeft,
)
def count_codes(principal: Principal) -> Any:
    return {
        "remaining": recovery_codes.remaining_recovery_codes(current_session(), user_id=principal.user.id)
    }
