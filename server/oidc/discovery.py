"""The provider metadata (OpenID Connect Discovery 1.0): what a relying party configures itself from."""

from __future__ import annotations

from typing import Any

from server.services.keys import ALGORITHM
from server.services.oidc import ACR_VALUES_SUPPORTED, SCOPES_SUPPORTED

CLAIMS_SUPPORTED = (
    "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "preferred_username",
)  # fmt: skip


def discovery_document(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "acr_values_supported": [str(value) for value in ACR_VALUES_SUPPORTED],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
