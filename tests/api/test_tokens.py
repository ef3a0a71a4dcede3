"""Self-service enrollment of TOTP/HOTP tokens: URI, QR, activation, expiry, listing, removal."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.accounts import Accounts, PhoneToken, bearer


@pytest.mark.parametrize(
    "options",
    [
        {"type": "totp"},
        {"type": "totp", "algorithm": "SHA256", "digits": 8, "period": 60},
        {"type": "totp", "algorithm": "SHA512"},
        {"type": "hotp"},
        {"type": "hotp", "algorithm": "SHA256", "digits": 8},
    ],
)
def test_enroll_activate_and_sign_in(accounts: Accounts, options: dict[str, object]) -> None:
    accounts.create_user("alice")
    session = accounts.enroll_session("alice")
    created = accounts.client.post("/api/v1/tokens", json=options, headers=bearer(session))
    assert created.status_code == 201
    body = created.json
    assert body["state"] == "pending"
    assert body["qr_svg"].startswith("<svg") or "<svg" in body["qr_svg"][:200]
    assert body["expires_in"] == 600
    uri = urlsplit(body["otpauth_uri"])
    query = {key: values[0] for key, values in parse_qs(uri.query).items()}
    assert uri.scheme == "otpauth" and uri.netloc == options["type"]
    assert uri.path == "/Tokenward:alice"
    assert query["secret"] == body["secret"] and "=" not in body["secret"]
    assert query["issuer"] == "Tokenward"
    assert query.get("algorithm", "SHA1") == options.get("algorithm", "SHA1")
    assert int(query.get("digits", 6)) == options.get("digits", 6)
    if options["type"] == "hotp":
        assert query["counter"] == "0"

    phone = PhoneToken(
        body["id"],
        body["secret"],
        str(options["type"]),
        str(options.get("algorithm", "SHA1")),
        int(options.get("digits", 6)),
        int(options.get("period", 30)),
    )  # type: ignore[call-overload]
    wrong = accounts.client.post(
        f"/api/v1/tokens/{phone.token_id}/activate", json={"otp": "0" * phone.digits}, headers=bearer(session)
    )
    assert wrong.status_code == 401
    activated = accounts.client.post(
        f"/api/v1/tokens/{phone.token_id}/activate",
        json={"otp": phone.code(accounts.clock.now())},
        headers=bearer(session),
    )
    assert activated.status_code == 200
    assert activated.json == {"id": phone.token_id, "state": "active"}
    accounts.clock.advance(phone.period)
    full = accounts.full_session("alice", phone)
    assert full["amr"] == ["otp", "pwd", "mfa"]


def test_qr_png_only_while_pending_and_only_for_the_owner(accounts: Accounts) -> None:
    accounts.create_user("alice")
    accounts.create_user("bob")
    alice = accounts.enroll_session("alice")
    bob = accounts.enroll_session("bob")
    token_id = accounts.client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(alice)).json["id"]

    png = accounts.client.get(f"/api/v1/tokens/{token_id}/qr.png", headers=bearer(alice))
    assert png.status_code == 200
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    assert png.headers["Cache-Control"] == "no-store"
    assert accounts.client.get(f"/api/v1/tokens/{token_id}/qr.png", headers=bearer(bob)).status_code == 404
    assert accounts.client.get(f"/api/v1/tokens/{token_id}/qr.png").status_code == 401


def test_a_pending_token_expires(accounts: Accounts) -> None:
    accounts.create_user("alice")
    session = accounts.enroll_session("alice")
    body = accounts.client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(session)).json
    phone = PhoneToken(body["id"], body["secret"])
    accounts.clock.advance(601)
    session = accounts.client.post(
        "/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]}
    ).json
    late = accounts.client.post(
        f"/api/v1/tokens/{phone.token_id}/activate",
        json={"otp": phone.code(accounts.clock.now())},
        headers=bearer(session),
    )
    assert late.status_code == 410
    assert late.json["code"] == "enrollment_expired"
    assert (
        accounts.client.get(f"/api/v1/tokens/{phone.token_id}/qr.png", headers=bearer(session)).status_code
        == 404
    )
    assert accounts.client.get("/api/v1/tokens", headers=bearer(session)).json["tokens"] == []


def test_a_pending_token_is_not_a_second_factor(accounts: Accounts) -> None:
    accounts.create_user("alice")
    session = accounts.enroll_session("alice")
    accounts.client.post("/api/v1/tokens", json={"type": "totp"}, headers=bearer(session))
    assert accounts.login("alice")["status"] == "enroll"


def test_listing_shows_no_secrets_and_delete_removes(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("alice")
    session = accounts.full_session("alice", phone)
    listed = accounts.client.get("/api/v1/tokens", headers=bearer(session)).json["tokens"]
    assert [token["id"] for token in listed] == [phone.token_id]
    assert not {"secret", "otpauth_uri", "secret_encrypted"} & set(listed[0])
    assert phone.secret not in str(listed)

    deleted = accounts.client.delete(f"/api/v1/tokens/{phone.token_id}", headers=bearer(session))
    assert deleted.status_code == 204
    assert accounts.client.get("/api/v1/tokens", headers=bearer(session)).json["tokens"] == []
    assert (
        accounts.client.delete(f"/api/v1/tokens/{phone.token_id}", headers=bearer(session)).status_code == 404
    )


def test_another_users_token_cannot_be_touched(accounts: Accounts) -> None:
    alice_phone = accounts.user_with_phone("alice")
    bob_phone = accounts.user_with_phone("bob")
    bob = accounts.full_session("bob", bob_phone)
    assert (
        accounts.client.delete(f"/api/v1/tokens/{alice_phone.token_id}", headers=bearer(bob)).status_code
        == 404
    )


@pytest.mark.parametrize(
    "options",
    [
        {"type": "totp", "digits": 7},
        {"type": "totp", "algorithm": "MD5"},
        {"type": "totp", "period": 45},
        {"type": "sms"},
        {"type": "totp", "digits": "6"},
        {"type": "webauthn", "digits": 8},
    ],
)
def test_invalid_options_are_422(accounts: Accounts, options: dict[str, object]) -> None:
    accounts.create_user("alice")
    session = accounts.enroll_session("alice")
    response = accounts.client.post("/api/v1/tokens", json=options, headers=bearer(session))
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
