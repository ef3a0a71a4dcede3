"""The provider metadata against OpenID Connect Discovery 1.0 (section 3: the REQUIRED members, and the
ones this provider promises), and the token endpoint's rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from tests.accounts import dispose_app

URL_LIST = {"type": "array", "items": {"type": "string"}, "minItems": 1}
ENDPOINT = {"type": "string", "pattern": "^https?://"}
# OpenID Connect Discovery 1.0, section 3: REQUIRED members (token_endpoint is required unless only the
# implicit flow is offered; this provider offers only the code flow), with their types.
DISCOVERY_REQUIRED = {
    "type": "object",
    "required": [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ],
    "properties": {
        "issuer": {"type": "string", "pattern": "^https?://[^?#]+$"},
        "authorization_endpoint": ENDPOINT,
        "token_endpoint": ENDPOINT,
        "userinfo_endpoint": ENDPOINT,
        "jwks_uri": ENDPOINT,
        "end_session_endpoint": ENDPOINT,
        "revocation_endpoint": ENDPOINT,
        "response_types_supported": URL_LIST,
        "subject_types_supported": {
            "type": "array",
            "items": {"enum": ["public", "pairwise"]},
            "minItems": 1,
        },
        "id_token_signing_alg_values_supported": {"type": "array", "contains": {"const": "ES256"}},
        "scopes_supported": {"type": "array", "contains": {"const": "openid"}},
        "claims_supported": URL_LIST,
        "acr_values_supported": URL_LIST,
        "token_endpoint_auth_methods_supported": URL_LIST,
        "code_challenge_methods_supported": URL_LIST,
    },
}


def test_discovery_has_every_required_member(client: FlaskClient, app: Flask) -> None:
    answer = client.get("/.well-known/openid-configuration")
    assert answer.status_code == 200
    doc = answer.json
    assert isinstance(doc, dict)
    jsonschema.validate(doc, DISCOVERY_REQUIRED)
    issuer = app.extensions["tokenward"].settings.public_url
    # The issuer is the URL the document is found under (Discovery section 4.3), without a trailing slash.
    assert doc["issuer"] == issuer
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"acr", "amr", "auth_time", "sid", "nonce", "azp"} <= set(doc["claims_supported"])
    assert set(doc["acr_values_supported"]) == {"single-factor", "mfa", "phishing-resistant"}
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert doc[name].startswith(issuer + "/")
    assert doc["jwks_uri"] == issuer + "/.well-known/jwks.json"
    keys = client.get("/.well-known/jwks.json").json
    assert keys is not None and all(key["alg"] == "ES256" and key["kid"] for key in keys["keys"])
    assert "implicit" not in doc["grant_types_supported"] and "registration_endpoint" not in doc


@pytest.fixture
def limited(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    app = create_app(
        replace(settings, rate_limits=RateLimits.parse("ip=3/minute"), ratelimit_storage="memory://"),
        clock=clock,
    )
    yield app
    dispose_app(app)


def test_the_token_endpoint_is_rate_limited(limited: Flask) -> None:
    client = limited.test_client()
    form = {"grant_type": "authorization_code", "code": "guess", "client_id": "0" * 32}
    statuses = [client.post("/oauth2/token", data=form).status_code for _ in range(4)]
    assert all(status in (400, 401) for status in statuses[:3]) and statuses[3] == 429
