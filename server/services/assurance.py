"""Assurance: how a session was earned (`amr`, `acr`, `auth_time`) and what each kind of action needs.

acr values, weakest first:
- `single-factor`: one factor (a password alone, or a code alone from a client's one-step form);
- `recovery`: a password and a recovery or temporary code: enough to enroll a new factor, nothing else;
- `mfa`: two factors (password + phone code or fob, or a security key with user verification);
- `phishing-resistant`: two factors of which one is a WebAuthn key (bound to this site's origin).

Every route declares one `Access` (server.http.contract), checked here against the session's claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal

from server.errors import Forbidden, MfaRequired, StepUpRequired


class Acr(StrEnum):
    SINGLE_FACTOR = "single-factor"
    RECOVERY = "recovery"
    MFA = "mfa"
    PHISHING_RESISTANT = "phishing-resistant"


RANK = {Acr.SINGLE_FACTOR: 0, Acr.RECOVERY: 0, Acr.MFA: 1, Acr.PHISHING_RESISTANT: 2}
# amr values of the codes that stand in for a lost factor (not RFC 8176 values; documented in the README).
RECOVERY_AMR = frozenset({"recovery_code", "temporary_code"})
FULL_SCOPE = "session"
ENROLL_SCOPE = "enroll"

# public: anyone; any: any valid session, a client's (`azp`) included (`me`, logout); session: any of
# Tokenward's own sessions, an enroll-only one included; enroll: an enroll-only session or a recent
# multi-factor one (adding a factor); user: a full session; step_up: a full multi-factor session whose second
# factor was answered within TOKENWARD_STEP_UP_MAX_AGE; admin: a full multi-factor session of an
# administrator; admin_step_up: both (what gives someone a way in: a user with a password, a password reset,
# a temporary code, a token assigned, a client secret), so a stolen or forgotten admin session cannot.
Access = Literal["public", "any", "session", "enroll", "user", "step_up", "admin", "admin_step_up"]


def amr_for(methods: Iterable[str]) -> list[str]:
    """RFC 8176 values, `mfa` last when more than one factor kind was used (or a factor proved two, as a
    security key with user verification does)."""
    given = set(methods)
    factors = sorted(given - {"mfa"})
    return [*factors, "mfa"] if len(factors) > 1 or "mfa" in given else factors


def acr_for(amr: Iterable[str], *, phishing_resistant: bool) -> Acr:
    """`phishing_resistant`: the second factor was a WebAuthn assertion (origin-bound)."""
    given = set(amr)
    if given & RECOVERY_AMR:
        return Acr.RECOVERY
    if "mfa" not in given:
        return Acr.SINGLE_FACTOR
    return Acr.PHISHING_RESISTANT if phishing_resistant else Acr.MFA


def meets(acr: str, required: str) -> bool:
    """Whether a session of `acr` satisfies a client's or request's required level."""
    try:
        return RANK[Acr(acr)] >= RANK[Acr(required)]
    except ValueError:
        return False


def check_access(
    access: Access, *, claims: Mapping[str, Any], role: str, now: float, step_up_max_age: int
) -> None:
    """Raises Forbidden (or its MfaRequired / StepUpRequired kinds) when the session may not do this."""
    if access in ("public", "any"):
        return
    if claims.get("azp"):
        raise Forbidden("This session belongs to an application: it may read /me and log out, nothing else")
    if access == "session":
        return
    scope, acr = claims.get("scope"), str(claims.get("acr", Acr.SINGLE_FACTOR))
    if access == "enroll" and scope == ENROLL_SCOPE:
        return
    if scope != FULL_SCOPE:
        raise Forbidden("This session may only enroll a token; sign in again with it")
    if access == "user":
        return
    if not meets(acr, Acr.MFA):
        raise MfaRequired()
    if access in ("admin", "admin_step_up") and role != "admin":
        raise Forbidden("Administrators only")
    if access == "admin":
        return
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or now - auth_time > step_up_max_age:
        raise StepUpRequired(max_age=step_up_max_age)
