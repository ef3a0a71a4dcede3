"""The real `tokenward` console: import PSKC and CSV seed files, list, assign; failures are one line, exit 1.

Each command is a separate process on the test's database; the imported tokens are then verified through
the API of an app built on the same database and instance directory (so the same encryption key).
"""

from __future__ import annotations

import base64
import codecs
import io
import json
from pathlib import Path

import pskc
import pyotp
import pytest
from flask import Flask

from tests.e2e.conftest import Console

pytestmark = pytest.mark.slow

HOTP_KEY = bytes.fromhex("3132333435363738393031323334353637383930")
PSK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
CSV = (
    "serial, key, type, digits, counter/period\n"
    f"CSV-H, {HOTP_KEY.hex()}, hotp, 6, 0\n"
    f"CSV-T, {HOTP_KEY.hex()}, totp, 8, 30\n"
)


def _pskc(path: Path, *, psk: bytes | None = None) -> Path:
    container = pskc.PSKC()
    container.add_key(
        serial="PSKC-H", secret=HOTP_KEY, algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp", counter=2
    )
    container.add_key(
        serial="PSKC-O",
        secret=HOTP_KEY,
        algorithm="urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA1-6:QN08",
    )
    if psk is not None:
        container.encryption.setup_preshared_key(key=psk)
    output = io.BytesIO()
    container.write(output)
    path.write_bytes(output.getvalue())
    return path


def _hotp(counter: int) -> str:
    return pyotp.HOTP(base64.b32encode(HOTP_KEY).decode()).at(counter)


def test_import_list_assign_then_the_token_verifies(console: Console, api: Flask, tmp_path: Path) -> None:
    # process=True: as the program a user starts, the family's other commands in process (console_runner.py)
    printed = console.ok("token", "import", str(_pskc(tmp_path / "fobs.xml")), process=True)
    assert printed.strip() == (
        "imported 2 tokens from fobs.xml (1 fob, 1 hotp), "
        "unassigned (tokenward token assign SERIAL --user NAME)"
    )
    (tmp_path / "phones.csv").write_text(CSV)
    # the progress bar goes to stderr: the JSON on stdout stays parseable
    answer = json.loads(
        console.ok("token", "import", str(tmp_path / "phones.csv"), "--json", "--progress", process=True)
    )
    assert answer == {
        "imported": 2,
        "source": "phones.csv",
        "by_type": {"hotp": 1, "totp": 1},
        "user": None,
        "serials": ["CSV-H", "CSV-T"],
    }

    unassigned = json.loads(console.ok("token", "list", "--unassigned", "--json"))
    assert sorted(view["serial"] for view in unassigned) == ["CSV-H", "CSV-T", "PSKC-H", "PSKC-O"]
    assert all("secret" not in view for view in unassigned)
    table = console.ok("token", "list", "--unassigned")
    assert "PSKC-O" in table and "fob" in table

    console.ok("user", "add", "alice", "--no-password")
    assert console.ok("token", "assign", "PSKC-H", "--user", "alice").strip() == "assigned PSKC-H to alice"
    owned = json.loads(console.ok("token", "list", "--user", "alice", "--json"))
    assert [(view["serial"], view["user"], view["counter"]) for view in owned] == [("PSKC-H", "alice", 2)]
    assert len(json.loads(console.ok("token", "list", "--unassigned", "--json"))) == 3

    client = api.test_client()
    accepted = client.post("/api/v1/verify", json={"username": "alice", "otp": _hotp(2)})
    assert accepted.status_code == 200, accepted.json


def test_import_for_a_user_with_a_pre_shared_key(console: Console, api: Flask, tmp_path: Path) -> None:
    console.ok("user", "add", "bob", "--no-password")
    seeds = _pskc(tmp_path / "encrypted.pskcxml", psk=PSK)
    printed = console.ok("token", "import", str(seeds), "--psk", PSK.hex(), "--user", "bob")
    assert "imported 2 tokens" in printed and "assigned to bob" in printed
    accepted = api.test_client().post("/api/v1/verify", json={"username": "bob", "otp": _hotp(2)})
    assert accepted.status_code == 200, accepted.json


def test_a_passphrase_from_standard_input(console: Console, tmp_path: Path) -> None:
    container = pskc.PSKC()
    container.add_key(serial="PB-1", secret=HOTP_KEY, algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp")
    container.encryption.setup_pbkdf2("open sesame", iterations=1000)
    container.write(str(tmp_path / "pbkdf2.xml"))

    refused = console.fails("token", "import", str(tmp_path / "pbkdf2.xml"))
    assert refused == "error: pbkdf2.xml: the file is encrypted; give --passphrase or --passphrase-stdin"
    wrong = console.fails(
        "token", "import", str(tmp_path / "pbkdf2.xml"), "--passphrase-stdin", stdin="nope\n"
    )
    assert wrong == "error: pbkdf2.xml: wrong pre-shared key or passphrase; nothing was imported"
    answer = console.ok(
        "token", "import", str(tmp_path / "pbkdf2.xml"), "--passphrase-stdin", "--json", stdin="open sesame\n"
    )
    assert json.loads(answer)["serials"] == ["PB-1"]


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (
            f"GOOD, {HOTP_KEY.hex()}, hotp\nBAD, nothex, hotp\n",
            (),
            "error: seeds.txt: line 2 (serial BAD): the key is not an even number of hexadecimal digits; "
            "nothing was imported",
        ),
        (f"X, {HOTP_KEY.hex()}, hotp\n", ("--user", "nobody"), "error: No such user"),
        (
            f"X, {HOTP_KEY.hex()}, hotp\n",
            ("--psk", "not-hex"),
            "error: --psk must be the pre-shared key in hexadecimal",
        ),
        (
            f"X, {HOTP_KEY.hex()}, hotp\n",
            ("--psk", "00", "--passphrase", "x"),
            "error: give at most one of --psk, --passphrase and --passphrase-stdin",
        ),
    ],
    ids=["bad-line", "unknown-user", "bad-psk", "two-keys"],
)
def test_import_failures_are_one_line(
    console: Console, tmp_path: Path, content: str, args: tuple[str, ...], expected: str
) -> None:
    (tmp_path / "seeds.txt").write_text(content)
    assert console.fails("token", "import", str(tmp_path / "seeds.txt"), *args) == expected
    assert json.loads(console.ok("token", "list", "--json")) == []


def test_other_failures_are_one_line(console: Console, tmp_path: Path) -> None:
    seeds = _pskc(tmp_path / "fobs.xml", psk=PSK)
    assert (
        console.fails("token", "import", str(seeds))
        == "error: fobs.xml: the file is encrypted; give --psk HEX"
    )
    assert console.fails("token", "import", str(seeds), "--psk", "00" * 16) == (
        "error: fobs.xml: wrong pre-shared key or passphrase; nothing was imported"
    )
    assert console.fails("token", "import", str(tmp_path / "missing.csv")).startswith("error: ")
    console.ok("token", "import", str(seeds), "--psk", PSK.hex())
    assert console.fails("token", "import", str(seeds), "--psk", PSK.hex()) == (
        "error: fobs.xml: entry 1: serial PSKC-H is already in the database "
        "(and 1 more in this part of the file); nothing was imported"
    )
    assert console.fails("token", "assign", "NOPE", "--user", "nobody") == "error: No such user"
    console.ok("user", "add", "carol", "--no-password")
    assert console.fails("token", "assign", "NOPE", "--user", "carol") == "error: no token with serial NOPE"
    console.ok("token", "assign", "PSKC-O", "--user", "carol")
    assert console.fails("token", "assign", "PSKC-O", "--user", "carol").startswith(
        "error: The token already belongs"
    )
    assert console.fails("token", "list", "--unassigned", "--user", "carol") == (
        "error: --unassigned and --user exclude each other"
    )


def test_a_long_error_stays_one_line_without_a_terminal(console: Console, tmp_path: Path) -> None:
    console.process = True  # the width rich finds when the program starts without a terminal
    (tmp_path / "a-rather-long-file-name-for-seeds.csv").write_text("S1, zz, hotp\n")
    narrow = {key: value for key, value in console.env.items() if key != "COLUMNS"}
    result = console.run(
        "token", "import", str(tmp_path / "a-rather-long-file-name-for-seeds.csv"), env=narrow
    )
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr


def _with_entity_serial(path: Path, encoding: str, *, bom: bytes) -> Path:
    """The PSKC file of `_pskc` in `encoding`, its first serial taken from an internal entity of a DTD."""
    text = _pskc(path).read_text(encoding="utf-8").split("?>", 1)[1]
    body = text.replace(">PSKC-H<", ">&serial;<", 1)
    dtd = '<!DOCTYPE KeyContainer [<!ENTITY serial "FROM-AN-ENTITY">]>'
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    path.write_bytes(bom + (declaration + dtd + body).encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", b""),
        ("utf-32-le", codecs.BOM_UTF32_LE),
    ],
    ids=["utf-8", "utf-16-bom", "utf-16-be", "utf-32-bom"],
)
def test_a_dtd_is_refused_whatever_the_encoding(
    console: Console, tmp_path: Path, encoding: str, bom: bytes
) -> None:
    seeds = _with_entity_serial(tmp_path / "entity.xml", encoding, bom=bom)
    for chosen in ((), ("--format", "pskc")):
        assert console.fails("token", "import", str(seeds), *chosen) == (
            "error: entity.xml: the PSKC file has a DTD (<!DOCTYPE>), which seed files never need; "
            "nothing was imported"
        )
    assert json.loads(console.ok("token", "list", "--json")) == []
