"""Typed errors raised by services; the API turns them into problem+json (RFC 9457).

Stdlib only: services import this module, and it must never pull Flask in.
"""

from __future__ import annotations


class TokenwardError(Exception):
    """Base of every expected failure. `detail` is safe to show: never a secret, code or token."""

    code: str = "error"
    status: int = 400
    title: str = "Request failed"
    # What the audit log records when it differs from what the caller is told (a lock hidden from a caller
    # who has not proved a password is audited as `token_locked` but answered as a wrong code).
    audit_reason: str | None = None

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        """`extra`: safe members added to the problem body (e.g. `max_age` of a step-up)."""
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class ValidationFailed(TokenwardError):
    code, status, title = "validation_error", 422, "The request is not valid"


class MalformedRequest(TokenwardError):
    code, status, title = "malformed_request", 400, "The request body is not a JSON object"


class NotFound(TokenwardError):
    code, status, title = "not_found", 404, "Not found"


class Forbidden(TokenwardError):
    code, status, title = "forbidden", 403, "Not allowed"


class Conflict(TokenwardError):
    code, status, title = "conflict", 409, "Conflict with the current state"


class MfaRequired(Forbidden):
    code, title = "mfa_required", "This needs a session signed in with two factors"


class StepUpRequired(Forbidden):
    code, title = "step_up_required", "Confirm it is you: answer your second factor again"


class EnrollmentNeedsCode(Forbidden):
    code, title = (
        "enrollment_needs_code",
        "Adding a first token needs a recovery code or a temporary code from an administrator",
    )


class InvalidClient(TokenwardError):
    code, status, title = "invalid_client", 401, "Client authentication failed"


class MethodNotAllowed(TokenwardError):
    code, status, title = "method_not_allowed", 403, "This client may not use this sign-in method"


class InvalidRecoveryCode(TokenwardError):
    code, status, title = "invalid_recovery_code", 401, "The recovery code is not valid"


class InvalidTemporaryCode(TokenwardError):
    code, status, title = "invalid_temporary_code", 401, "The temporary code is not valid or expired"


class InvalidCredentials(TokenwardError):
    code, status, title = "invalid_credentials", 401, "Invalid username or password"


class Unauthenticated(TokenwardError):
    code, status, title = "unauthenticated", 401, "A valid access token is required"


class InvalidToken(TokenwardError):
    code, status, title = "invalid_token", 401, "The access token is not valid"


class InvalidOtp(TokenwardError):
    code, status, title = "invalid_otp", 401, "The one-time code is not valid"


class ReplayedOtp(TokenwardError):
    code, status, title = "replayed_otp", 401, "This one-time code was already used"


class InvalidFobResponse(TokenwardError):
    code, status, title = "invalid_fob_response", 401, "The fob response is not valid"


class InvalidCredential(TokenwardError):
    code, status, title = "invalid_credential", 401, "The security key response is not valid"


class CredentialCounterRegressed(InvalidCredential):
    code, title = (
        "credential_counter_regressed",
        "The security key's counter went backwards; the key was disabled",
    )


class CredentialNotDiscoverable(InvalidCredential):
    code, title = (
        "credential_not_discoverable",
        "This security key was registered without passkey sign-in; sign in with a username",
    )


class AuthenticatorNotAllowed(TokenwardError):
    code, status, title = "authenticator_not_allowed", 403, "This model of security key is not allowed here"


class AttestationUntrusted(TokenwardError):
    code, status, title = "attestation_untrusted", 403, "The security key's attestation is not trusted"


class TokenLocked(TokenwardError):
    code, status, title = "token_locked", 403, "The token is locked after too many failures"


class NoUsableToken(TokenwardError):
    code, status, title = "no_usable_token", 401, "No active token can answer this request"


class TransactionExpired(TokenwardError):
    code, status, title = "transaction_expired", 401, "The login transaction expired or was already used"


class TooManyAttempts(TokenwardError):
    code, status, title = "too_many_attempts", 401, "Too many attempts for this login transaction"


class EnrollmentExpired(TokenwardError):
    code, status, title = "enrollment_expired", 410, "The pending enrollment expired; start again"


class RefreshTokenInvalid(TokenwardError):
    code, status, title = "invalid_refresh_token", 401, "The refresh token is not valid"


class RefreshTokenReused(TokenwardError):
    code, status, title = (
        "refresh_token_reused",
        401,
        "The refresh token was already used; its session was revoked",
    )


class ResyncFailed(TokenwardError):
    code, status, title = (
        "resync_failed",
        422,
        "The codes do not match consecutive values in the resync window",
    )


class ServiceUnavailable(TokenwardError):
    code, status, title = "unavailable", 503, "A backing service is not reachable"
    # Sent as Retry-After when set: how long a caller should wait before trying again.
    retry_after_seconds: int | None = None


class DirectoryUnavailable(ServiceUnavailable):
    """The user directory (LDAP/AD) did not answer in time or refused the service account. The detail never
    carries the directory's own error text; the log does."""

    code, title = "directory_unavailable", "The user directory is not reachable; try again shortly"
    retry_after_seconds = 30


class DatabaseUnavailable(ServiceUnavailable):
    """The database refused or dropped the connection, or did not answer within its timeouts."""

    code, title = "database_unavailable", "The database is not reachable; try again shortly"
    retry_after_seconds = 5


class RateLimitStoreUnavailable(ServiceUnavailable):
    """The shared rate-limit storage (Redis) did not answer: requests it should count are refused, never
    let through uncounted."""

    code, title = (
        "rate_limit_store_unavailable",
        "The rate-limit store is not reachable; try again shortly",
    )
    retry_after_seconds = 5


class ConfigurationError(TokenwardError):
    code, status, title = "configuration_error", 500, "Invalid configuration"


class InvalidGrant(TokenwardError):
    """OpenID Connect: an authorization code or refresh token that is unknown, spent, expired or not this
    client's (RFC 6749 `invalid_grant`)."""

    code, status, title = "invalid_grant", 400, "The authorization grant is not valid"


class PasswordInDirectory(Conflict):
    code, title = (
        "password_in_directory",
        "This user's password is kept in the LDAP/AD directory: change or reset it there",
    )
