"""Who may present a session's refresh token (RFC 6749 section 6): a refresh token issued to a registered
client is bound to that client, which authenticates to use it.

- A relying party's session (OpenID Connect, `oidc_scope` set): only at `/oauth2/token`, by that client.
- A session a client got by one-step verify (or a transaction it started): only at `/api/v1/token/refresh`
  with that client's HTTP Basic credentials.
- Any other session (the pages, an application's own sign-in without client credentials): without client
  authentication; a client presenting it is refused (it was not issued to that client).
"""

from __future__ import annotations

from server.errors import InvalidClient, RefreshTokenInvalid, TokenwardError
from server.models import Client, SessionFamily


def refusal(family: SessionFamily, *, client: Client | None, oidc: bool) -> TokenwardError | None:
    """The error refusing this caller the family's refresh token (its `audit_reason` says why), or None."""
    if oidc or family.oidc_scope is not None:
        bound = (
            oidc and family.oidc_scope is not None and client is not None and family.client_id == client.id
        )
        return None if bound else _invalid("not_this_clients_session")
    if family.client_id is None:
        return None if client is None else _invalid("not_this_clients_session")
    if client is None:
        error = InvalidClient(
            "This refresh token was issued to a registered client: authenticate as that client (HTTP Basic)"
        )
        error.audit_reason = "client_authentication_required"
        return error
    return None if client.id == family.client_id else _invalid("not_this_clients_session")


def _invalid(reason: str) -> TokenwardError:
    error = RefreshTokenInvalid()
    error.audit_reason = reason
    return error
