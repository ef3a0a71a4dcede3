"""JWT sessions: claims, JWKS, refresh rotation with reuse detection, logout, and refused tokens."""

from __future__ import annotations

import base64
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from server.db import db
from server.services.keys import rotate_signing_key
from tests.accounts import Accounts, bearer


def _me(accounts: Accounts, access_token: str) -> int:
    return accounts.client.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}).status_code


def _jwks_verify(accounts: Accounts, token: str) -> dict[str, object]:
    keys = accounts.client.get("/.well-known/jwks.json").json["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in keys if key["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience="tokenward",
                      issuer="http://localhost:5000", options={"verify_exp": False, "verify_iat": False,
                                                               "verify_nbf": False})  # fmt: skip


def test_access_token_claims_and_jwks(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    header = jwt.get_unverified_header(session["access_token"])
    assert header["alg"] == "ES256"
    claims = _jwks_verify(accounts, session["access_token"])
    assert {
        "iss",
        "sub",
        "preferred_username",
        "aud",
        "iat",
        "nbf",
        "exp",
        "jti",
        "amr",
        "auth_time",
        "scope",
    } <= set(claims)
    assert claims["exp"] - claims["iat"] == 600
    assert session["expires_in"] == 600


def test_refresh_rotates_and_reuse_revokes_the_family(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    first = accounts.full_session("alice", phone)
    second = accounts.client.post(
        "/api/v1/token/refresh", json={"refresh_token": first["refresh_token"]}
    ).json
    assert second["refresh_token"] != first["refresh_token"]
    assert second["amr"] == first["amr"]

    reuse = accounts.client.post("/api/v1/token/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json["code"] == "refresh_token_reused"
    after = accounts.client.post("/api/v1/token/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    assert _me(accounts, second["access_token"]) == 401


def test_refresh_token_expires(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    accounts.clock.advance(2_592_000 + 1)
    response = accounts.client.post("/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]})
    assert response.status_code == 401
    assert response.json["code"] == "invalid_refresh_token"


def test_logout_revokes_access_and_refresh_at_once(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    other = accounts.full_session("alice", phone)
    assert accounts.client.post("/api/v1/logout", json={}, headers=bearer(session)).status_code == 204
    assert _me(accounts, session["access_token"]) == 401
    refresh = accounts.client.post("/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401
    assert _me(accounts, other["access_token"]) == 200  # another sign-in of the same user is untouched


def test_expired_and_not_yet_valid_tokens_are_refused(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    accounts.clock.advance(600)
    assert _me(accounts, session["access_token"]) == 401
    accounts.clock.advance(-1300)
    assert _me(accounts, session["access_token"]) == 401


def _forge(claims: dict[str, object], header: dict[str, object], key: ec.EllipticCurvePrivateKey) -> str:
    return jwt.encode(claims, key, algorithm="ES256", headers=header)


def test_tampered_none_foreign_and_misaddressed_tokens_are_refused(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    token = accounts.full_session("alice", phone)["access_token"]
    assert _me(accounts, token) == 200
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    head, payload, signature = token.split(".")

    tampered_claims = {**claims, "preferred_username": "root", "scope": "session"}
    tampered_payload = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).decode().rstrip("=")
    tampered = f"{head}.{tampered_payload}.{signature}"
    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "kid": header["kid"]}).encode()
    ).decode()
    alg_none = f"{none_header.rstrip('=')}.{payload}."
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    foreign = _forge(claims, {"kid": header["kid"]}, foreign_key)
    unknown_kid = _forge(claims, {"kid": "not-a-key"}, foreign_key)
    hs256 = jwt.encode(claims, "secret" * 6, algorithm="HS256", headers={"kid": header["kid"]})

    for bad in (tampered, alg_none, foreign, unknown_kid, hs256, "", "a.b.c", token + "x"):
        assert _me(accounts, bad) == 401, bad


def test_wrong_audience_and_issuer_are_refused(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    token = accounts.full_session("alice", phone)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    with app.app_context():
        rt = app.extensions["tokenward"]
        key = rt.keys.signing_key(db.session, now=rt.now()).private_key
        for changed in ({"aud": "someone-else"}, {"iss": "https://evil.example"}):
            assert _me(accounts, _forge({**claims, **changed}, {"kid": kid}, key)) == 401
        assert _me(accounts, _forge(claims, {"kid": kid}, key)) == 200  # the forging itself is sound


def test_rotation_keeps_old_tokens_valid_until_they_expire(app: Flask, accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    before = accounts.full_session("alice", phone)["access_token"]
    with app.app_context():
        rt = app.extensions["tokenward"]
        new_kid = rotate_signing_key(db.session, rt.box, now=rt.now())
    accounts.clock.advance(11)  # past the node's signing-key cache
    after = accounts.full_session("alice", phone)["access_token"]
    kids = [key["kid"] for key in accounts.client.get("/.well-known/jwks.json").json["keys"]]

    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert jwt.get_unverified_header(before)["kid"] in kids
    assert _me(accounts, before) == 200
    assert _me(accounts, after) == 200
    accounts.clock.advance(600)
    kids = [key["kid"] for key in accounts.client.get("/.well-known/jwks.json").json["keys"]]
    assert kids == [new_kid]
