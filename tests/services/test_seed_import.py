"""Seed-file import: PSKC files written here with python-pskc (plain, pre-shared key, PBKDF2) and OATH CSV,
imported in one transaction, then verified through the real login; bad files import nothing and say where."""

from __future__ import annotations

import base64
import codecs
import hashlib
import io
from typing import Any

import pskc
import pyotp
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from devices.ocra import ocra_response
from server.db import db
from server.errors import NotFound
from server.models import AuditEvent, Token
from server.services import seed_import, tokens, users
from server.services.audit import Actor
from server.services.runtime import Runtime
from server.services.seed_files import SeedRecord, parse_csv, parse_pskc, parse_seed_file
from server.services.seed_import import (
    ImportResult,
    SeedDecryptionFailed,
    SeedFileInvalid,
    SeedKeyRequired,
    SeedSerialTaken,
)
from server.services.token_secrets import token_secret
from tests.accounts import Accounts

ACTOR = Actor.console()
HOTP_URI = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
TOTP_URI = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
OCRA_SUITE = "OCRA-1:HOTP-SHA256-8:C-QN08"
KEYS = {
    "HOTP-1": bytes.fromhex("3132333435363738393031323334353637383930"),  # the RFC 4226 key
    "TOTP-1": bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132"),
    "OCRA-1": bytes.fromhex("3132333435363738393031323334353637383930313233343536373839303132"),
}
PSK = bytes.fromhex("12345678901234567890123456789012")
PASSPHRASE = "correct horse battery staple"


def _pskc_file(
    entries: list[dict[str, Any]], *, psk: bytes | None = None, passphrase: str | None = None
) -> bytes:
    container = pskc.PSKC()
    for entry in entries:
        container.add_key(**entry)
    if psk is not None:
        container.encryption.setup_preshared_key(key=psk, fields=["secret", "counter"])
    if passphrase is not None:
        container.encryption.setup_pbkdf2(passphrase, iterations=1000)
    output = io.BytesIO()
    container.write(output)
    return output.getvalue()


def _three_kinds() -> list[dict[str, Any]]:
    return [
        {
            "serial": "HOTP-1",
            "secret": KEYS["HOTP-1"],
            "algorithm": HOTP_URI,
            "response_length": 6,
            "counter": 5,
        },
        {
            "serial": "TOTP-1",
            "secret": KEYS["TOTP-1"],
            "algorithm": TOTP_URI,
            "algorithm_suite": "HMAC-SHA256",
            "response_length": 8,
            "time_interval": 60,
            "manufacturer": "Acme",
            "model": "T60",
        },
        {
            "serial": "OCRA-1",
            "secret": KEYS["OCRA-1"],
            "algorithm": f"urn:ietf:params:xml:ns:keyprov:pskc#{OCRA_SUITE}",
            "response_length": 8,
            "friendly_name": "desk fob",
        },
    ]


def _import(app: Flask, data: bytes, **options: Any) -> ImportResult:
    with app.app_context():
        return seed_import.import_seed_file(
            db.session, app.extensions["tokenward"], data=data, source="seeds", actor=ACTOR, **options
        )


def _stored(app: Flask) -> dict[str, Token]:
    with app.app_context():
        rows = db.session.scalars(select(Token)).all()
        db.session.expunge_all()
        return {token.serial: token for token in rows}


def _audit(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "token.import")).all()
        db.session.expunge_all()
        return list(rows)


def _assign(app: Flask, serial: str, username: str) -> None:
    with app.app_context():
        rt = app.extensions["tokenward"]
        page = tokens.list_all_tokens(
            db.session, rt, filters=tokens.TokenFilter(serial=serial), limit=1, offset=0
        )
        user = users.get_user(db.session, username=username)
        tokens.assign_token(db.session, rt, token=page.tokens[0][0], user=user, actor=ACTOR)


def _verify(accounts: Accounts, username: str, code: str) -> int:
    response = accounts.client.post("/api/v1/verify", json={"username": username, "otp": code})
    return response.status_code


def _b32(key: bytes) -> str:
    return base64.b32encode(key).decode()


def _check_no_key_material(*texts: str) -> None:
    for key in KEYS.values():
        for form in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(), _b32(key)):
            for text in texts:
                assert form not in text


# ---- PSKC: plain, pre-shared key, PBKDF2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "protection",
    [{}, {"psk": PSK}, {"passphrase": PASSPHRASE}],
    ids=["plain", "pre-shared-key", "pbkdf2"],
)
def test_pskc_tokens_import_unassigned_then_verify_at_login(
    app: Flask, accounts: Accounts, protection: dict[str, Any]
) -> None:
    data = _pskc_file(_three_kinds(), **protection)

    result = _import(app, data, **protection)

    assert result.count == 3
    assert dict(result.by_type) == {"hotp": 1, "totp": 1, "fob": 1}
    assert result.username is None
    stored = _stored(app)
    assert {serial: token.user_id for serial, token in stored.items()} == dict.fromkeys(KEYS)
    assert {token.state for token in stored.values()} == {"active"}
    hotp, totp, fob = stored["HOTP-1"], stored["TOTP-1"], stored["OCRA-1"]
    assert (hotp.type, hotp.digits, hotp.algorithm, hotp.counter) == ("hotp", 6, "SHA1", 5)
    assert (totp.type, totp.digits, totp.algorithm, totp.period) == ("totp", 8, "SHA256", 60)
    assert totp.description == "Acme T60"
    assert (fob.type, fob.ocra_suite, fob.description) == ("fob", OCRA_SUITE, "desk fob")

    accounts.create_user("alice")
    _assign(app, "HOTP-1", "alice")
    _assign(app, "TOTP-1", "alice")
    hotp_code = pyotp.HOTP(_b32(KEYS["HOTP-1"])).at(5)
    totp_code = pyotp.TOTP(_b32(KEYS["TOTP-1"]), digits=8, digest=hashlib.sha256, interval=60).at(
        int(accounts.clock.now())
    )
    assert _verify(accounts, "alice", hotp_code) == 200
    assert _verify(accounts, "alice", totp_code) == 200
    assert _verify(accounts, "alice", hotp_code) == 401  # single use still holds


def test_an_imported_ocra_key_answers_like_the_fob(app: Flask, rt: Runtime) -> None:
    seed_import.import_seed_file(db.session, rt, data=_pskc_file(_three_kinds()), source="seeds", actor=ACTOR)
    fob = db.session.scalars(select(Token).where(Token.serial == "OCRA-1")).one()
    expected = ocra_response(OCRA_SUITE, KEYS["OCRA-1"], question="12345678", counter=0)
    stored_key = token_secret(rt, fob)
    assert ocra_response(fob.ocra_suite or "", stored_key, question="12345678", counter=0) == expected


def test_import_for_a_user_assigns_every_token(app: Flask, accounts: Accounts) -> None:
    accounts.create_user("bob")
    result = _import(app, _pskc_file(_three_kinds()), username="bob")
    assert result.username == "bob"
    with app.app_context():
        bob = users.get_user(db.session, username="bob")
        bob_id = bob.id
    assert {token.user_id for token in _stored(app).values()} == {bob_id}
    assert _verify(accounts, "bob", pyotp.HOTP(_b32(KEYS["HOTP-1"])).at(5)) == 200


def test_an_unknown_user_imports_nothing(app: Flask) -> None:
    with pytest.raises(NotFound):
        _import(app, _pskc_file(_three_kinds()), username="nobody")
    assert _stored(app) == {}


@pytest.mark.parametrize(
    ("written", "given"),
    [
        ({"psk": PSK}, {"psk": bytes(16)}),
        ({"psk": PSK}, {"psk": PSK[:8]}),
        ({"passphrase": PASSPHRASE}, {"passphrase": "wrong horse"}),
        ({"passphrase": PASSPHRASE}, {"psk": bytes(32)}),
    ],
    ids=["wrong-psk", "short-psk", "wrong-passphrase", "psk-for-passphrase-file"],
)
def test_a_wrong_key_is_one_clear_error_and_imports_nothing(
    app: Flask, written: dict[str, Any], given: dict[str, Any]
) -> None:
    with pytest.raises(SeedDecryptionFailed) as raised:
        _import(app, _pskc_file(_three_kinds(), **written), **given)
    assert raised.value.detail == "wrong pre-shared key or passphrase"
    assert _stored(app) == {}
    [event] = _audit(app)
    assert (event.result, event.reason) == ("failure", "seed_decryption_failed")


@pytest.mark.parametrize(
    ("written", "protection"),
    [({"psk": PSK}, "psk"), ({"passphrase": PASSPHRASE}, "passphrase")],
)
def test_an_encrypted_file_without_a_key_asks_for_the_right_one(
    app: Flask, written: dict[str, Any], protection: str
) -> None:
    with pytest.raises(SeedKeyRequired) as raised:
        _import(app, _pskc_file(_three_kinds(), **written))
    assert raised.value.extra["protection"] == protection
    assert _stored(app) == {}


def test_a_passphrase_for_a_pre_shared_key_file_is_refused() -> None:
    with pytest.raises(SeedFileInvalid, match="pre-shared key, not a passphrase"):
        parse_pskc(_pskc_file(_three_kinds(), psk=PSK), passphrase=PASSPHRASE)


def _with_bad_third_entry(**bad: Any) -> list[dict[str, Any]]:
    entries = [
        {"serial": f"T{index}", "secret": KEYS["HOTP-1"], "algorithm": TOTP_URI, "response_length": 6}
        for index in range(1, 6)
    ]
    entries[2].update(bad)
    return entries


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"secret": bytes(range(10))}, "the key is 10 bytes; 14 to 128 are accepted"),
        ({"response_length": 7}, "digits must be 6 or 8"),
        ({"time_interval": 45}, "period must be 30 or 60"),
        ({"algorithm_suite": "HMAC-MD5"}, "the hash algorithm must be SHA1, SHA256 or SHA512"),
        ({"algorithm": "urn:ietf:params:xml:ns:keyprov:pskc:pin"}, "not HOTP, TOTP or OCRA"),
        ({"algorithm": "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-MD5-6:QN08"}, "OCRA suite"),
        ({"time_offset": 3}, "start time (T0)"),
        ({"time_drift": 100_000}, "clock drift"),
        (
            {"algorithm": "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA1-8:QN08"},
            "the response length 6 does not match the OCRA suite's 8",
        ),
        ({"response_encoding": "ALPHANUMERIC"}, "only decimal responses"),
    ],
)
def test_a_bad_entry_in_the_middle_imports_nothing_and_is_named(
    app: Flask, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(SeedFileInvalid) as raised:
        _import(app, _pskc_file(_with_bad_third_entry(**bad)))
    assert raised.value.detail.startswith("entry 3 (serial T3): ")
    assert message in raised.value.detail
    _check_no_key_material(raised.value.detail)
    assert _stored(app) == {}


@pytest.mark.parametrize(
    ("algorithm", "suite", "expected"),
    [
        ("urn:ietf:params:xml:ns:keyprov:pskc:hotp", None, ("hotp", None)),
        ("urn:ietf:params:xml:ns:keyprov:pskc#totp", None, ("totp", None)),  # the algorithm-profiles draft
        ("urn:ietf:params:xml:ns:keyprov:pskc:TOTP", None, ("totp", None)),
        (f"urn:ietf:params:xml:ns:keyprov:pskc#{OCRA_SUITE}", None, ("fob", OCRA_SUITE)),
        ("urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1", OCRA_SUITE, ("fob", OCRA_SUITE)),
    ],
)
def test_the_algorithm_uri_spellings_seed_files_use(
    algorithm: str, suite: str | None, expected: tuple[str, str | None]
) -> None:
    entry = {"serial": "S1", "secret": KEYS["OCRA-1"], "algorithm": algorithm, "algorithm_suite": suite}
    [record] = parse_pskc(_pskc_file([entry]))
    assert (record.type, record.ocra_suite) == expected


def test_an_entry_without_a_serial_is_named_by_its_place() -> None:
    entries = _with_bad_third_entry(serial=None)
    with pytest.raises(SeedFileInvalid, match=r"^entry 3: the serial is missing"):
        parse_pskc(_pskc_file(entries))


def test_the_clock_drift_of_a_totp_entry_is_kept(app: Flask) -> None:
    _import(app, _pskc_file(_with_bad_third_entry(time_drift=-2)))
    assert _stored(app)["T3"].drift_steps == -2


def test_a_serial_twice_in_the_file_imports_nothing(app: Flask) -> None:
    entries = _with_bad_third_entry()
    entries[3]["serial"] = "T2"
    with pytest.raises(SeedFileInvalid, match="serial T2 appears twice: entry 2 and entry 4"):
        _import(app, _pskc_file(entries))
    assert _stored(app) == {}


def test_a_serial_already_in_the_database_imports_nothing(app: Flask) -> None:
    _import(app, _pskc_file(_with_bad_third_entry()[1:2]))  # T2
    with pytest.raises(SeedSerialTaken, match=r"^entry 2: serial T2 is already in the database"):
        _import(app, _pskc_file(_with_bad_third_entry()))
    assert set(_stored(app)) == {"T2"}
    assert [event.result for event in _audit(app)] == ["success", "failure"]


def test_a_conflict_only_the_database_sees_rolls_back_every_batch(
    app: Flask, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serial taken by a concurrent import between the check and the insert: the unique constraint fails a
    later batch, and the batches already flushed go with it."""
    late = seed_import.INSERT_BATCH + 10
    records = [
        SeedRecord(serial=f"R{index}", type="hotp", key=KEYS["HOTP-1"], origin=f"line {index}")
        for index in range(late + 5)
    ]
    seed_import.import_seeds(db.session, rt, records=records[late : late + 1], source="first", actor=ACTOR)
    monkeypatch.setattr(seed_import, "_check_not_taken", lambda session, records: None)

    with pytest.raises(SeedSerialTaken):
        seed_import.import_seeds(db.session, rt, records=records, source="second", actor=ACTOR)

    assert db.session.scalars(select(Token.serial)).all() == [f"R{late}"]


def test_a_dtd_is_refused_before_parsing() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">&lol2;</KeyContainer>'
    )
    with pytest.raises(SeedFileInvalid, match="DTD"):
        parse_seed_file(laughs)


# Each encoding an XML parser may read a PSKC file in: (name, how the document text becomes bytes).
ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-32-le-bom": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
    "utf-32-be-bom": lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"),
    "utf-32-le": lambda text: text.encode("utf-32-le"),
    "utf-32-be": lambda text: text.encode("utf-32-be"),
}
_ENTITY_SERIAL = '<!DOCTYPE KeyContainer [<!ENTITY serial "FROM-AN-ENTITY">]>'


def pskc_text_in(encoding: str, *, dtd: bool) -> bytes:
    """A one-key PSKC file in `encoding`, its declaration naming it; with `dtd`, its serial comes from an
    internal entity (what a DTD-blind import would expand and store)."""
    text = _pskc_file(_three_kinds()[:1]).decode("utf-8")
    declaration_end = text.index("?>") + 2
    name = encoding.removesuffix("-bom").upper()
    body = text[declaration_end:]
    if dtd:
        body = _ENTITY_SERIAL + body.replace(">HOTP-1<", ">&serial;<")
    return ENCODINGS[encoding](f'<?xml version="1.0" encoding="{name}"?>{body}')


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_dtd_is_refused_in_every_encoding(app: Flask, encoding: str) -> None:
    data = pskc_text_in(encoding, dtd=True)
    for chosen in (None, "pskc"):
        with pytest.raises(SeedFileInvalid, match="DTD"):
            _import(app, data, format=chosen)
    assert _stored(app) == {}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_pskc_file_in_any_xml_encoding_imports(app: Flask, encoding: str) -> None:
    result = _import(app, pskc_text_in(encoding, dtd=False))
    assert result.serials == ("HOTP-1",)
    assert token_secret(app.extensions["tokenward"], _stored(app)["HOTP-1"]) == KEYS["HOTP-1"]


@pytest.mark.parametrize(
    "declaration",
    ['<?xml version="1.0" encoding="cp037"?>', '<?xml version="1.0" encoding="no-such-codec"?>'],
    ids=["ebcdic", "unknown"],
)
def test_an_encoding_declaration_we_do_not_read_is_refused(declaration: str) -> None:
    data = (declaration + _pskc_file(_three_kinds()[:1]).decode().split("?>", 1)[1]).encode()
    with pytest.raises(SeedFileInvalid, match="declared encoding"):
        parse_seed_file(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<not xml",
        b"<html><body/></html>",
        b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0"/>',
        b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="2.0"/>',
    ],
    ids=["not-well-formed", "not-pskc", "no-keys", "wrong-version"],
)
def test_files_that_are_not_pskc_are_refused(data: bytes) -> None:
    with pytest.raises(SeedFileInvalid):
        parse_seed_file(data)


def test_audit_events_name_the_file_and_count_never_a_key(app: Flask, accounts: Accounts) -> None:
    accounts.create_user("carol")
    _import(app, _pskc_file(_three_kinds(), psk=PSK), psk=PSK, username="carol")
    with pytest.raises(SeedSerialTaken):
        _import(app, _pskc_file(_three_kinds()))
    events = _audit(app)
    assert [(event.result, event.target) for event in events] == [
        ("success", "seeds: 3 tokens for carol"),
        ("failure", "seeds"),
    ]
    with app.app_context():
        every_event = db.session.scalars(select(AuditEvent)).all()
        _check_no_key_material(*(repr(vars(event)) for event in every_event))


def test_progress_reports_reading_and_importing(rt: Runtime) -> None:
    seen: list[tuple[str, int, int]] = []
    seed_import.import_seed_file(
        db.session,
        rt,
        data=_pskc_file(_with_bad_third_entry()),
        source="seeds",
        actor=ACTOR,
        progress=lambda phase, done, total: seen.append((phase, done, total)),
    )
    assert seen[-1] == ("importing", 5, 5)
    assert [item for item in seen if item[0] == "reading"][-1] == ("reading", 5, 5)


def test_the_secret_is_sealed_to_the_token_id(rt: Runtime) -> None:
    seed_import.import_seed_file(db.session, rt, data=_pskc_file(_three_kinds()), source="s", actor=ACTOR)
    for token in db.session.scalars(select(Token)):
        assert token_secret(rt, token) == KEYS[token.serial or ""]
        assert KEYS[token.serial or ""] not in (token.secret_encrypted or b"")


def test_a_record_never_shows_its_key() -> None:
    [record] = parse_csv("S1, 3132333435363738393031323334353637383930, hotp")
    assert "3132" not in repr(record) and "1234" not in repr(record)


# ---- OATH CSV ---------------------------------------------------------------------------------------------

GOOD_CSV = """\
# seeds from the vendor
serial, key, type, digits, counter/period

  C-HOTP ,  3132333435363738393031323334353637383930 , HOTP , 6 , 3
C-TOTP,3132333435363738393031323334353637383930,totp,8,60
C-TOTP-2, 31323334353637383930313233343536373839303132333435363738393031 32, totp, , , SHA256
C-DEFAULT,3132333435363738393031323334353637383930,hotp
"""


def test_csv_lines_import_with_defaults_and_verify(app: Flask, accounts: Accounts) -> None:
    result = _import(app, GOOD_CSV.encode())
    assert result.serials == ("C-HOTP", "C-TOTP", "C-TOTP-2", "C-DEFAULT")
    stored = _stored(app)
    assert (stored["C-HOTP"].type, stored["C-HOTP"].digits, stored["C-HOTP"].counter) == ("hotp", 6, 3)
    assert (stored["C-TOTP"].digits, stored["C-TOTP"].period, stored["C-TOTP"].algorithm) == (8, 60, "SHA1")
    assert (stored["C-TOTP-2"].digits, stored["C-TOTP-2"].period) == (6, 30)
    assert stored["C-TOTP-2"].algorithm == "SHA256"
    assert (stored["C-DEFAULT"].digits, stored["C-DEFAULT"].counter) == (6, 0)

    accounts.create_user("dave")
    _assign(app, "C-HOTP", "dave")
    assert _verify(accounts, "dave", pyotp.HOTP(_b32(KEYS["HOTP-1"])).at(3)) == 200


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("B1, 31323334353637383930313233343536373839zz, hotp", "not an even number of hexadecimal digits"),
        ("B1, 313233343536373839303132333435363738393, hotp", "not an even number of hexadecimal digits"),
        ("B1, 3132333435363738393031323334353637383930, motp", "the type must be hotp or totp"),
        ("B1, 3132333435363738393031323334353637383930", "expected serial, key (hex), type"),
        ("B1, 3132333435363738393031323334353637383930, hotp, 6, 0, SHA1, extra", "expected serial"),
        ("B1, 3132333435363738393031323334353637383930, hotp, six", "the digits is not a whole number"),
        ("B1, 3132333435363738393031323334353637383930, hotp, 7", "digits must be 6 or 8"),
        ("B1, 3132333435363738393031323334353637383930, totp, 6, 45", "period must be 30 or 60"),
        ("B1, 3132333435363738393031323334353637383930, totp, 6, 0", "period must be 30 or 60"),
        ("B1, 3132333435363738393031323334353637383930, hotp, 6, -1", "the counter is out of range"),
        ("B1, 3132333435363738393031323334353637383930, hotp, 6, ١٢", "the counter is not a whole number"),
        ("B1, 31323334353637383930, hotp", "the key is 10 bytes"),
        ("B1, 3132333435363738393031323334353637383930, hotp, 6, 0, MD5", "hash algorithm"),
        ("B 1, 3132333435363738393031323334353637383930, hotp", "the serial is missing"),
    ],
)
def test_a_bad_csv_line_is_named_and_nothing_is_imported(app: Flask, line: str, message: str) -> None:
    text = f"serial,key,type\nG1, 3132333435363738393031323334353637383930, hotp\n# fine so far\n{line}\n"
    with pytest.raises(SeedFileInvalid) as raised:
        _import(app, text.encode())
    assert raised.value.detail.startswith("line 4")
    assert message in raised.value.detail
    _check_no_key_material(raised.value.detail)
    assert _stored(app) == {}


def test_a_serial_twice_in_a_csv_names_both_lines(app: Flask) -> None:
    line = "A1, 3132333435363738393031323334353637383930, hotp"
    with pytest.raises(SeedFileInvalid, match="serial A1 appears twice: line 1 and line 3"):
        _import(app, f"{line}\n\n{line}\n".encode())
    assert _stored(app) == {}


@pytest.mark.parametrize(
    "data",
    [b"", b"# only a comment\n\n", b"serial,key,type\n", b"\xff\xfe not utf-8"],
    ids=["empty", "comments", "header-only", "not-utf8"],
)
def test_a_csv_without_tokens_is_refused(data: bytes) -> None:
    with pytest.raises(SeedFileInvalid):
        parse_seed_file(data)


def test_the_format_can_be_forced() -> None:
    with pytest.raises(SeedFileInvalid, match="not a PSKC"):
        parse_seed_file(GOOD_CSV.encode(), format="pskc")


# ---- any input gives records or the typed error ---------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_csv_parser_on_any_text_gives_records_or_its_error(text: str) -> None:
    _records_or_typed_error(lambda: parse_csv(text))


_csv_field = st.one_of(
    st.sampled_from(["hotp", "totp", "HOTP", "6", "8", "30", "60", "0", "SHA256", "", " ", "#", '"', "-1"]),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=70),
    st.text(max_size=8),
)


@settings(max_examples=300)
@given(st.lists(st.lists(_csv_field, max_size=8).map(", ".join), max_size=6).map("\n".join))
def test_csv_parser_on_near_miss_lines_gives_records_or_its_error(text: str) -> None:
    _records_or_typed_error(lambda: parse_csv(text))


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_seed_file_parser_on_any_bytes_gives_records_or_its_error(data: bytes) -> None:
    _records_or_typed_error(lambda: parse_seed_file(data))


_VALID_PSKC = _pskc_file(_three_kinds())


@settings(max_examples=150)
@given(st.integers(0, len(_VALID_PSKC) - 1), st.binary(min_size=1, max_size=4))
def test_pskc_parser_on_damaged_files_gives_records_or_its_error(offset: int, junk: bytes) -> None:
    damaged = _VALID_PSKC[:offset] + junk + _VALID_PSKC[offset + len(junk) :]
    _records_or_typed_error(lambda: parse_pskc(damaged))


def _records_or_typed_error(parse: Any) -> None:
    try:
        records = parse()
    except SeedFileInvalid as err:
        _check_no_key_material(err.detail)
        return
    assert records and all(isinstance(record, SeedRecord) for record in records)
