"""Real external clients against the API: `oathtool` computes the codes, `zbarimg` reads the QR code.

A phone app only ever sees the otpauth URI, so the TOTP codes here are computed by oathtool from the
URI's parameters (secret, algorithm, digits, period) at the frozen clock's time (`--now=@EPOCH`). Both
tools must be installed (scripts/test installs them): a missing one fails these tests rather than skipping.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.accounts import Accounts, bearer

HOTP_LOOKAHEAD = 10  # Settings.hotp_lookahead's default


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (argv, result.stderr)
    return result.stdout.strip()


def oathtool_totp(uri: str, *, at: float) -> str:
    """The code oathtool computes at time `at` for the token this otpauth URI describes."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(uri).query).items()}
    return _run(
        "oathtool",
        f"--totp={query.get('algorithm', 'SHA1')}",
        "--base32",
        f"--digits={query.get('digits', '6')}",
        f"--time-step-size={query.get('period', '30')}s",
        f"--now=@{int(at)}",
        query["secret"],
    )


def oathtool_hotp(secret: str, *, counter: int, digits: int = 6) -> str:
    return _run("oathtool", "--hotp", "--base32", f"--digits={digits}", f"--counter={counter}", secret)


def zbarimg(png: bytes, path: Path) -> str:
    path.write_bytes(png)
    return _run("zbarimg", "--nodbus", "-q", "--raw", str(path))


def _enroll(
    accounts: Accounts, username: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pending token: (the enroll-only session, the enrollment answer)."""
    accounts.create_user(username)
    session = accounts.enroll_session(username)
    created = accounts.client.post("/api/v1/tokens", json=options, headers=bearer(session))
    assert created.status_code == 201, created.json
    return session, created.json  # type: ignore[return-value]


def _verify(accounts: Accounts, username: str, code: str) -> Any:
    return accounts.client.post("/api/v1/verify", json={"username": username, "otp": code})


@pytest.mark.parametrize(
    "options",
    [
        {"type": "totp"},
        {"type": "totp", "algorithm": "SHA256"},
        {"type": "totp", "algorithm": "SHA256", "digits": 8},
        {"type": "totp", "algorithm": "SHA512"},
        {"type": "totp", "algorithm": "SHA512", "digits": 8, "period": 60},
    ],
    ids=["sha1-6", "sha256-6", "sha256-8", "sha512-6", "sha512-8-60s"],
)
def test_oathtool_totp_codes_activate_and_sign_in(accounts: Accounts, options: dict[str, Any]) -> None:
    session, created = _enroll(accounts, "alice", options)
    uri, period = created["otpauth_uri"], options.get("period", 30)

    first = oathtool_totp(uri, at=accounts.clock.now())
    assert len(first) == options.get("digits", 6)
    activated = accounts.client.post(
        f"/api/v1/tokens/{created['id']}/activate", json={"otp": first}, headers=bearer(session)
    )
    assert activated.status_code == 200, activated.json

    accounts.clock.advance(period)
    accepted = _verify(accounts, "alice", oathtool_totp(uri, at=accounts.clock.now()))
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["amr"] == ["otp"]

    # Later on: a never-used code two steps old is outside the ±1 window; the code of now is accepted.
    accounts.clock.advance(3 * period)
    stale = _verify(accounts, "alice", oathtool_totp(uri, at=accounts.clock.now() - 2 * period))
    assert (stale.status_code, stale.json["code"]) == (401, "invalid_otp")
    assert _verify(accounts, "alice", oathtool_totp(uri, at=accounts.clock.now())).status_code == 200


@pytest.mark.parametrize("ahead", [1, 7, HOTP_LOOKAHEAD])
@pytest.mark.parametrize("digits", [6, 8])
def test_oathtool_hotp_codes_within_the_look_ahead(accounts: Accounts, ahead: int, digits: int) -> None:
    """The phone's button was pressed `ahead` times without a login: the server skips to that counter."""
    phone = accounts.user_with_phone("bob", type="hotp", digits=digits)  # activated with counter 0
    server_counter = phone.counter  # the next code the server expects
    skipped_to = server_counter + ahead

    accepted = _verify(accounts, "bob", oathtool_hotp(phone.secret, counter=skipped_to, digits=digits))
    assert accepted.status_code == 200, accepted.json
    # The counter moved past it: a code it skipped is refused as used, the next one is accepted.
    behind = _verify(accounts, "bob", oathtool_hotp(phone.secret, counter=skipped_to - 1, digits=digits))
    assert (behind.status_code, behind.json["code"]) == (401, "replayed_otp")
    following = _verify(accounts, "bob", oathtool_hotp(phone.secret, counter=skipped_to + 1, digits=digits))
    assert following.status_code == 200, following.json


def test_an_oathtool_hotp_code_beyond_the_look_ahead_is_refused(accounts: Accounts) -> None:
    phone = accounts.user_with_phone("carol", type="hotp")
    server_counter = phone.counter

    too_far = _verify(
        accounts, "carol", oathtool_hotp(phone.secret, counter=server_counter + HOTP_LOOKAHEAD + 1)
    )
    assert (too_far.status_code, too_far.json["code"]) == (401, "invalid_otp")
    # The refusal moved nothing: the code the server expects still works.
    expected = _verify(accounts, "carol", oathtool_hotp(phone.secret, counter=server_counter))
    assert expected.status_code == 200, expected.json


@pytest.mark.parametrize(
    "options",
    [
        {"type": "totp"},
        {"type": "totp", "algorithm": "SHA512", "digits": 8, "period": 60},
        {"type": "hotp"},
        {"type": "hotp", "algorithm": "SHA256", "digits": 8},
    ],
    ids=["totp", "totp-sha512-8-60s", "hotp", "hotp-sha256-8"],
)
def test_zbarimg_reads_the_enrollment_uri_from_the_qr_png(
    accounts: Accounts, options: dict[str, Any], tmp_path: Path
) -> None:
    session, created = _enroll(accounts, "dave.o+ops@example.com", options)
    qr = accounts.client.get(f"/api/v1/tokens/{created['id']}/qr.png", headers=bearer(session))
    assert qr.status_code == 200
    assert qr.mimetype == "image/png"
    assert zbarimg(qr.data, tmp_path / "qr.png") == created["otpauth_uri"]
