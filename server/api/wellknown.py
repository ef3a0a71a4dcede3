"""The public signing keys (JWKS) that resource servers verify access tokens with."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from server.db import current_session
from server.http.context import runtime
from server.http.contract import operation
from server.http.responses import Jwks
from server.services.keys import published_keys

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

# Resource servers may cache this long; JWKS clients such as PyJWKClient refetch on an unknown `kid`.
JWKS_MAX_AGE_SECONDS = 60


@operation(
    bp,
    "/jwks.json",
    "GET",
    summary="Public JWT signing keys (current and recently retired)",
    responses={200: "A JSON Web Key Set"},
    model=Jwks,
)
def jwks() -> Any:
    rt = runtime()
    rt.keys.signing_key(
        current_session(), now=rt.now()
    )  # the first start publishes a key before any token exists
    keys = published_keys(current_session(), now=rt.now(), retention_seconds=rt.settings.access_ttl)
    return keys, 200, {"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"}
