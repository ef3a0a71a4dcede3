"""Seed files read into typed records: PSKC (RFC 6030, via python-pskc) and OATH CSV. No database here.

Every problem is a `SeedFileInvalid` whose detail names the entry (PSKC key index or CSV line, and the serial
when there is one) and what is wrong with it; a detail never contains key material, and values that could be
a misplaced key (a bad type or number column) are described, not echoed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pskc
from pskc.exceptions import DecryptionError, KeyDerivationError, PSKCError

from devices.ocra import OcraError, OcraSuite
from server.errors import TokenwardError, ValidationFailed
from server.services.otp import validate_options
from server.services.xml_text import XmlEncodingError, as_utf8_document, detected_encoding, xml_text
from server.token_kinds import TokenType

# (done, total): called as entries are read, so a console can show progress.
Progress = Callable[[int, int], None]

FORMATS = ("pskc", "csv")
# pyotp refuses keys under 112 bits; RFC 4226 asks for at least 128 and recommends 160.
MIN_KEY_BYTES = 14
# An HMAC key longer than the largest hash block (SHA-512: 128 bytes) is a sign of a misread column.
MAX_KEY_BYTES = 128
# Not a seed file above this: a million tokens of PSKC is about 700 MB, and is better split into files.
MAX_SEED_FILE_BYTES = 256 * 1024 * 1024
# The counter column is a signed 64-bit integer.
MAX_COUNTER = 2**63 - 1
DEFAULT_DIGITS = 6
DEFAULT_PERIOD_SECONDS = 30
MAX_DESCRIPTION_CHARS = 128

SERIAL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+/#-]{0,63}")
_PSKC_ALGORITHM_PREFIX = re.compile(r"^urn:ietf:params:xml:ns:keyprov:pskc[:#]", re.IGNORECASE)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_NUMBER = re.compile(r"-?[0-9]{1,19}")
_HASH_NAME = re.compile(r"(?:HMAC-?)?SHA-?(1|256|512)")
# A PSKC file never needs a DTD; refusing one rules out entity expansion and external entities outright.
# Looked for in the decoded text (xml_text): in UTF-16 or UTF-32 it is not the ASCII bytes of "<!DOCTYPE".
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SeedFileInvalid(TokenwardError):
    code, status, title = "seed_file_invalid", 422, "The seed file is not valid; nothing was imported"


class SeedKeyRequired(SeedFileInvalid):
    """The file is encrypted and no key was given; `extra["protection"]` is "psk" or "passphrase"."""

    code, title = "seed_key_required", "The seed file is encrypted; its key or passphrase is needed"


class SeedDecryptionFailed(SeedFileInvalid):
    code, title = "seed_decryption_failed", "Wrong pre-shared key or passphrase"


@dataclass(frozen=True)
class SeedRecord:
    """One token read from a seed file. `origin` names its place in the file for messages."""

    serial: str
    type: str  # hotp | totp | fob (OCRA)
    key: bytes = field(repr=False)
    digits: int | None = DEFAULT_DIGITS
    algorithm: str | None = "SHA1"
    counter: int = 0
    period: int | None = None
    ocra_suite: str | None = None
    description: str = ""
    drift_steps: int = 0
    origin: str = ""


class _Problem(ValueError):
    """What is wrong with one entry; turned into a `SeedFileInvalid` that names the entry."""


def _invalid(origin: str, serial: str | None, problem: str) -> SeedFileInvalid:
    where = f"{origin} (serial {serial})" if serial and SERIAL_PATTERN.fullmatch(serial) else origin
    return SeedFileInvalid(f"{where}: {problem}")


def detect_format(data: bytes) -> str:
    """`pskc` for XML (in any encoding an XML parser reads: UTF-16 and UTF-32 too), else `csv`."""
    try:
        encoding, mark_length = detected_encoding(data)
    except XmlEncodingError:
        return "pskc"  # an XML declaration naming an encoding we refuse: parse_pskc says so
    head = data[mark_length : mark_length + 64].decode(encoding, errors="ignore")
    return "pskc" if head.lstrip(" \t\r\n").startswith("<") else "csv"


def parse_seed_file(
    data: bytes,
    *,
    format: str | None = None,
    psk: bytes | None = None,
    passphrase: str | None = None,
    progress: Progress | None = None,
) -> list[SeedRecord]:
    """The tokens of a PSKC or CSV seed file (format detected from the content unless given)."""
    if len(data) > MAX_SEED_FILE_BYTES:
        raise SeedFileInvalid(f"the file is larger than {MAX_SEED_FILE_BYTES // 2**20} MiB")
    chosen = format or detect_format(data)
    if chosen == "pskc":
        return parse_pskc(data, psk=psk, passphrase=passphrase, progress=progress)
    if chosen != "csv":
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SeedFileInvalid("the CSV file is not UTF-8 text") from None
    return parse_csv(text, progress=progress)


def check_record(
    origin: str,
    *,
    serial: str,
    token_type: str,
    key: bytes,
    digits: int | None,
    algorithm: str | None,
    counter: int = 0,
    period: int | None = None,
    ocra_suite: str | None = None,
    description: str = "",
    drift_steps: int = 0,
) -> SeedRecord:
    """A record whose values the server can verify, or `SeedFileInvalid` naming the entry."""
    try:
        if not SERIAL_PATTERN.fullmatch(serial):
            raise _Problem("the serial is missing or not 1-64 letters, digits or . _ : @ + / # -")
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise _Problem(f"the key is {len(key)} bytes; {MIN_KEY_BYTES} to {MAX_KEY_BYTES} are accepted")
        if not 0 <= counter <= MAX_COUNTER:
            raise _Problem("the counter is out of range")
        if token_type == TokenType.FOB:
            ocra_suite, digits = _checked_suite(ocra_suite, digits)
            algorithm = period = None
        elif token_type in (TokenType.HOTP, TokenType.TOTP):
            digits, algorithm, period = _checked_otp(token_type, digits, algorithm, period)
        else:
            raise _Problem("the token type must be hotp, totp or OCRA")
    except _Problem as problem:
        raise _invalid(origin, serial, str(problem)) from None
    return SeedRecord(
        serial=serial,
        type=token_type,
        key=key,
        digits=digits,
        algorithm=algorithm,
        counter=counter,
        period=period,
        ocra_suite=ocra_suite,
        description=_CONTROL.sub(" ", description).strip()[:MAX_DESCRIPTION_CHARS],
        drift_steps=drift_steps,
        origin=origin,
    )


def _checked_otp(
    token_type: str, digits: int | None, algorithm: str | None, period: int | None
) -> tuple[int, str, int | None]:
    """Defaults filled in, then the server's own rules (what otp.py can verify)."""
    digits = DEFAULT_DIGITS if digits is None else digits
    algorithm = algorithm or "SHA1"
    period = (DEFAULT_PERIOD_SECONDS if period is None else period) if token_type == TokenType.TOTP else None
    try:
        validate_options(
            token_type=token_type,
            algorithm=algorithm,
            digits=digits,
            period=DEFAULT_PERIOD_SECONDS if period is None else period,
        )
    except ValidationFailed as err:
        raise _Problem(err.detail) from None
    return digits, algorithm, period


def _checked_suite(text: str | None, digits: int | None) -> tuple[str, int]:
    try:
        suite = OcraSuite.parse(text or "")
    except OcraError as err:
        raise _Problem(f"the OCRA suite is not valid: {err}") from None
    if digits is not None and digits != suite.digits:
        raise _Problem(f"the response length {digits} does not match the OCRA suite's {suite.digits}")
    return str(suite), suite.digits


def _hash_algorithm(text: str | None) -> str:
    """SHA1, SHA256 or SHA512 from the spellings seed files use (`HMAC-SHA256`, `sha-256`, …)."""
    if not text:
        return "SHA1"
    match = _HASH_NAME.fullmatch(text.strip().upper())
    if match is None:
        raise _Problem("the hash algorithm must be SHA1, SHA256 or SHA512")
    return f"SHA{match.group(1)}"


# ---- PSKC ------------------------------------------------------------------------------------------------


def parse_pskc(
    data: bytes, *, psk: bytes | None = None, passphrase: str | None = None, progress: Progress | None = None
) -> list[SeedRecord]:
    """The keys of a PSKC file: plain, encrypted with a pre-shared key (`psk`), or with a key derived from
    `passphrase` (PBKDF2). A key that does not decrypt the first entry is `SeedDecryptionFailed`."""
    try:
        text = xml_text(data)
    except XmlEncodingError as err:
        raise SeedFileInvalid(f"not a PSKC (RFC 6030) file: {err}") from None
    if _DTD.search(text):
        raise SeedFileInvalid("the PSKC file has a DTD (<!DOCTYPE>), which seed files never need")
    try:
        # The parser reads the very text checked above (UTF-8, no encoding declaration left to reinterpret).
        container = pskc.PSKC(io.BytesIO(as_utf8_document(text)))
    except (PSKCError, ValueError, TypeError, OverflowError, LookupError):
        # The library's message may quote values from the file; ours does not.
        raise SeedFileInvalid("not a PSKC (RFC 6030) file, or not well-formed XML") from None
    keys = container.keys
    if not keys:
        raise SeedFileInvalid("the PSKC file holds no keys")
    _unlock(container, psk=psk, passphrase=passphrase)
    records: list[SeedRecord] = []
    for index, key in enumerate(keys, start=1):
        records.append(_pskc_record(f"entry {index}", key, is_first=not records))
        if progress is not None:
            progress(index, len(keys))
    return records


def _unlock(container: pskc.PSKC, *, psk: bytes | None, passphrase: str | None) -> None:
    encryption = container.encryption
    if encryption.algorithm is None:
        return  # plain values only
    by_passphrase = encryption.derivation.algorithm is not None
    if passphrase is not None:
        if not by_passphrase:
            raise SeedFileInvalid("the file is encrypted with a pre-shared key, not a passphrase")
        try:
            encryption.derive_key(passphrase)
        except (KeyDerivationError, ValueError, TypeError, OverflowError):
            raise SeedFileInvalid("the file's key derivation is incomplete or not supported") from None
    elif psk is not None:
        encryption.key = psk
    else:
        protection = "passphrase" if by_passphrase else "psk"
        detail = "a passphrase" if by_passphrase else "a pre-shared key"
        raise SeedKeyRequired(f"the file is encrypted; {detail} is needed", protection=protection)


def _pskc_record(origin: str, key: Any, *, is_first: bool) -> SeedRecord:
    serial = _text(key.serial) or _text(key.id)
    try:
        secret, counter = key.secret, key.counter
        interval, offset, drift = key.time_interval, key.time_offset, key.time_drift
    except DecryptionError as err:
        if is_first:  # a wrong key fails on the first value; a later failure is a damaged entry
            raise SeedDecryptionFailed("wrong pre-shared key or passphrase") from err
        raise _invalid(origin, serial, "its values do not decrypt or their MAC does not match") from err
    try:
        if not secret:
            raise _Problem("no secret (a key reference or an empty value)")
        token_type, suite = _pskc_kind(key.algorithm, key.algorithm_suite)
        if token_type != TokenType.FOB:
            if key.response_encoding and key.response_encoding.upper() != "DECIMAL":
                raise _Problem("only decimal responses are supported")
            if offset:
                raise _Problem("a TOTP start time (T0) other than 0 is not supported")
        algorithm = None if token_type == TokenType.FOB else _hash_algorithm(key.algorithm_suite)
    except _Problem as problem:
        raise _invalid(origin, serial, str(problem)) from None
    description = _text(key.friendly_name) or " ".join(
        part for part in (_text(key.manufacturer), _text(key.model)) if part
    )
    return check_record(
        origin,
        serial=serial,
        token_type=token_type,
        key=bytes(secret),
        digits=key.response_length,
        algorithm=algorithm,
        counter=0 if token_type == TokenType.TOTP else counter or 0,
        period=interval if token_type == TokenType.TOTP else None,
        ocra_suite=suite,
        description=description,
        drift_steps=(drift or 0) if token_type == TokenType.TOTP else 0,
    )


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def _pskc_kind(uri: str | None, suite: str | None) -> tuple[str, str | None]:
    """(token type, OCRA suite) from a key's algorithm URI (`…pskc:hotp`, `…pskc#totp`, `…pskc#OCRA-1:…`)."""
    match = _PSKC_ALGORITHM_PREFIX.match(uri or "")
    name = (uri or "")[match.end() :] if match else ""
    if name.lower() in ("hotp", "totp"):
        return name.lower(), None
    if name.upper().startswith("OCRA-1:"):
        return TokenType.FOB, name
    if name.upper() in ("OCRA", "OCRA-1"):
        return TokenType.FOB, suite
    raise _Problem("the key algorithm is not HOTP, TOTP or OCRA")


# ---- OATH CSV --------------------------------------------------------------------------------------------

CSV_COLUMNS = "serial, key (hex), type (hotp|totp)[, digits[, counter (hotp) or period (totp)[, algorithm]]]"
_MIN_CSV_FIELDS, _MAX_CSV_FIELDS = 3, 6


def parse_csv(text: str, *, progress: Progress | None = None) -> list[SeedRecord]:
    """OATH CSV, one token per line: `serial, key, type[, digits[, counter-or-period[, algorithm]]]`.

    Blank lines, `#` comments and a first line starting with `serial` (a header) are skipped; spaces around
    fields are ignored. A record never spans lines, so the line number in a message is the editor's."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    records: list[SeedRecord] = []
    for line_number, line in enumerate(lines, start=1):
        fields = _csv_fields(line_number, line)
        if not fields or (not records and fields[0].lower() == "serial"):
            continue
        records.append(_csv_record(f"line {line_number}", fields))
        if progress is not None:
            progress(line_number, len(lines))
    if not records:
        raise SeedFileInvalid("the CSV file holds no tokens")
    return records


def _csv_fields(line_number: int, line: str) -> list[str]:
    """The stripped fields of one line, without trailing empty ones; [] for a blank or comment line."""
    if not line.strip() or line.lstrip().startswith("#"):
        return []
    try:
        row = next(csv.reader([line], skipinitialspace=True), [])
    except csv.Error as err:
        raise SeedFileInvalid(f"line {line_number}: not valid CSV ({err})") from None
    fields = [value.strip() for value in row]
    while fields and not fields[-1]:
        fields.pop()
    return fields


def _csv_record(origin: str, fields: list[str]) -> SeedRecord:
    serial = fields[0]
    try:
        if not _MIN_CSV_FIELDS <= len(fields) <= _MAX_CSV_FIELDS:
            raise _Problem(f"expected {CSV_COLUMNS}")
        key_hex, token_type = fields[1].replace(" ", ""), fields[2].lower()
        if not _HEX.fullmatch(key_hex):
            raise _Problem("the key is not an even number of hexadecimal digits")
        if token_type not in (TokenType.HOTP, TokenType.TOTP):
            raise _Problem("the type must be hotp or totp")
        digits = _number(fields, 3, "digits")
        moving = _number(fields, 4, "counter" if token_type == TokenType.HOTP else "period")
        algorithm = _hash_algorithm(fields[5] if len(fields) > 5 else None)
    except _Problem as problem:
        raise _invalid(origin, serial, str(problem)) from None
    return check_record(
        origin,
        serial=serial,
        token_type=token_type,
        key=bytes.fromhex(key_hex),
        digits=digits,
        algorithm=algorithm,
        counter=(moving or 0) if token_type == TokenType.HOTP else 0,
        period=moving if token_type == TokenType.TOTP else None,
    )


def _number(fields: list[str], index: int, name: str) -> int | None:
    if len(fields) <= index or not fields[index]:
        return None
    if not _NUMBER.fullmatch(fields[index]):
        raise _Problem(f"the {name} is not a whole number")
    return int(fields[index])
