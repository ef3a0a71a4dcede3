"""OCRA (RFC 6287): every Appendix C vector, the suite grammar, and input validation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.ocra import (
    DEFAULT_SUITE,
    OcraError,
    OcraInputError,
    OcraSuite,
    OcraSuiteError,
    TimeStep,
    hash_pin,
    ocra_response,
    random_challenge,
    time_step_at,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "ocra-rfc6287.json").read_text())


def _cases() -> list[Any]:
    params = []
    for suite in VECTORS["suites"]:
        for number, case in enumerate(suite["cases"]):
            name = f"{suite['section']}-{suite['suite']}-{suite['mode']}-{number}"
            params.append(pytest.param(suite, case, id=name.replace(" ", "")))
    return params


@pytest.mark.parametrize(("suite", "case"), _cases())
def test_rfc6287_appendix_c(suite: dict[str, Any], case: dict[str, Any]) -> None:
    pin_hash = bytes.fromhex(suite["pin_hash_hex"]) if "pin_hash_hex" in suite else None
    question = tuple(case["challenges"]) if "challenges" in case else case["question"]
    response = ocra_response(
        suite["suite"],
        bytes.fromhex(suite["key_hex"]),
        question=question,
        counter=case.get("counter"),
        pin_hash=pin_hash,
        time_step=case.get("time_step"),
    )
    assert response == case["response"]


def test_the_table_holds_every_appendix_c_vector() -> None:
    counts = {}
    for suite in VECTORS["suites"]:
        counts[suite["section"]] = counts.get(suite["section"], 0) + len(suite["cases"])
    # C.1: 10 + 10 + 5 + 10 + 5; C.2: 10 + 5 + 5 (mutual, both sides); C.3: 5 + 5.
    assert counts == {"C.1": 40, "C.2": 20, "C.3": 10}


@pytest.mark.parametrize("suite", [s for s in VECTORS["suites"] if "pin" in s], ids=lambda s: s["suite"])
def test_pin_hash_is_the_rfcs(suite: dict[str, Any]) -> None:
    assert hash_pin(suite["suite"], suite["pin"]).hex() == suite["pin_hash_hex"]


def test_time_step_of_the_rfcs_timestamp() -> None:
    for suite in VECTORS["suites"]:
        for case in suite["cases"]:
            if "unix_time" in case:
                assert time_step_at(suite["suite"], case["unix_time"]) == case["time_step"]


def test_time_steps_of_each_unit() -> None:
    assert time_step_at("OCRA-1:HOTP-SHA1-6:QN08-T30S", 59.9) == 1
    assert time_step_at("OCRA-1:HOTP-SHA1-6:QN08-T2M", 240) == 2
    assert time_step_at("OCRA-1:HOTP-SHA1-6:QN08-T48H", 48 * 3600 * 3 - 1) == 2
    with pytest.raises(OcraInputError):
        time_step_at("OCRA-1:HOTP-SHA1-6:QN08-T0H", 1000)
    with pytest.raises(OcraInputError):
        time_step_at("OCRA-1:HOTP-SHA1-6:QN08-T1M", -1)
    with pytest.raises(OcraInputError):
        time_step_at(DEFAULT_SUITE, 1000)


VALID_SUITES = [
    DEFAULT_SUITE,
    "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
    "OCRA-1:HOTP-SHA512-0:C-QH64-PSHA512-S999-T48H",
    "OCRA-1:HOTP-SHA1-10:QA04-S064",
    "OCRA-1:HOTP-SHA1-4:QN10-T59S",
    "OCRA-1:HOTP-SHA1-6:QN08-T0H",
]
INVALID_SUITES = [
    "",
    "OCRA-2:HOTP-SHA1-6:QN08",
    "OCRA-1:TOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-SHA3-6:QN08",
    "OCRA-1:HOTP-SHA1-3:QN08",
    "OCRA-1:HOTP-SHA1-11:QN08",
    "OCRA-1:HOTP-SHA1-06:QN08",
    "OCRA-1:HOTP-SHA1-6:QN03",
    "OCRA-1:HOTP-SHA1-6:QN65",
    "OCRA-1:HOTP-SHA1-6:QN8",
    "OCRA-1:HOTP-SHA1-6:QX08",
    "OCRA-1:HOTP-SHA1-6:C",
    "OCRA-1:HOTP-SHA1-6:C-",
    "OCRA-1:HOTP-SHA1-6:QN08-C",
    "OCRA-1:HOTP-SHA1-6:QN08-PSHA3",
    "OCRA-1:HOTP-SHA1-6:QN08-S64",
    "OCRA-1:HOTP-SHA1-6:QN08-T",
    "OCRA-1:HOTP-SHA1-6:QN08-T60S",
    "OCRA-1:HOTP-SHA1-6:QN08-T01M",
    "OCRA-1:HOTP-SHA1-6:QN08-T49H",
    "OCRA-1:HOTP-SHA1-6:QN08-T1M-S064",
    "OCRA-1:HOTP-SHA1-6:qn08",
    "ocra-1:HOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-SHA1-6:QN08\n",
    " OCRA-1:HOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-SHA1-6:QN\uff10\uff18",  # full-width digits
]


@pytest.mark.parametrize("text", VALID_SUITES)
def test_valid_suites_parse_to_their_own_text(text: str) -> None:
    assert str(OcraSuite.parse(text)) == text


@pytest.mark.parametrize("text", INVALID_SUITES)
def test_invalid_suites_are_refused(text: str) -> None:
    with pytest.raises(OcraSuiteError):
        OcraSuite.parse(text)


def test_parsed_fields() -> None:
    suite = OcraSuite.parse("OCRA-1:HOTP-SHA512-0:C-QH16-PSHA256-S128-T14H")
    assert suite == OcraSuite("SHA512", 0, "H", 16, True, "SHA256", 128, TimeStep(14, "H"))
    assert suite.time_step is not None and suite.time_step.seconds == 14 * 3600


def test_a_suite_built_directly_must_still_be_valid() -> None:
    with pytest.raises(OcraSuiteError):
        OcraSuite("SHA1", 6, "N", 3)
    with pytest.raises(OcraSuiteError):
        OcraSuite("SHA1", 6, "N", 8, time_step=TimeStep(60, "S"))


suites = st.builds(
    OcraSuite,
    hash_name=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.sampled_from([0, 4, 5, 6, 7, 8, 9, 10]),
    question_format=st.sampled_from(["A", "N", "H"]),
    question_length=st.integers(4, 64),
    counter=st.booleans(),
    pin_hash_name=st.none() | st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    session_length=st.none() | st.integers(0, 999),
    time_step=st.none()
    | st.builds(TimeStep, st.integers(1, 59), st.sampled_from(["S", "M"]))
    | st.builds(TimeStep, st.integers(0, 48), st.just("H")),
)


@given(suites)
def test_every_valid_suite_round_trips(suite: OcraSuite) -> None:
    assert OcraSuite.parse(str(suite)) == suite


SUITE_ALPHABET = "OCRA-1:HOTPSHA256QNPSTMCH0123456789 x"


@given(st.text() | st.text(alphabet=SUITE_ALPHABET) | suites.map(str).flatmap(lambda s: st.just(s[:-1])))
def test_any_text_gives_a_suite_or_an_ocra_error(text: str) -> None:
    try:
        suite = OcraSuite.parse(text)
    except OcraError:
        return
    assert str(suite) == text


@pytest.mark.parametrize(
    ("suite", "inputs"),
    [
        (DEFAULT_SUITE, {"question": "123"}),  # shorter than 4
        (DEFAULT_SUITE, {"question": "123456789"}),  # longer than QN08
        (DEFAULT_SUITE, {"question": "1234567A"}),  # not numeric
        (DEFAULT_SUITE, {"question": "12345678", "counter": 1}),  # the suite has no C
        (DEFAULT_SUITE, {"question": "12345678", "time_step": 1}),
        (DEFAULT_SUITE, {"question": "12345678", "pin_hash": bytes(20)}),
        (DEFAULT_SUITE, {"question": "12345678", "session_info": b"x"}),
        (DEFAULT_SUITE, {"question": ("1234", "5678", "9012")}),
        ("OCRA-1:HOTP-SHA1-6:QH08", {"question": "1234567g"}),
        ("OCRA-1:HOTP-SHA1-6:QA08", {"question": "abcd-fgh"}),
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"question": "12345678"}),  # counter missing
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"question": "12345678", "counter": -1}),
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"question": "12345678", "counter": 1 << 64}),
        ("OCRA-1:HOTP-SHA1-6:C-QN08", {"question": "12345678", "counter": True}),
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA256", {"question": "12345678"}),
        ("OCRA-1:HOTP-SHA1-6:QN08-PSHA256", {"question": "12345678", "pin_hash": bytes(20)}),
        ("OCRA-1:HOTP-SHA1-6:QN08-S004", {"question": "12345678"}),
        ("OCRA-1:HOTP-SHA1-6:QN08-S004", {"question": "12345678", "session_info": bytes(5)}),
        ("OCRA-1:HOTP-SHA1-6:QN08-T1M", {"question": "12345678"}),
    ],
)
def test_inputs_that_do_not_fit_the_suite(suite: str, inputs: dict[str, Any]) -> None:
    with pytest.raises(OcraInputError):
        ocra_response(suite, b"k" * 20, **inputs)


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(OcraInputError):
        ocra_response(DEFAULT_SUITE, b"", question="12345678")


def test_no_truncation_gives_the_whole_hmac() -> None:
    suite = "OCRA-1:HOTP-SHA256-0:QA08"
    key = b"k" * 32
    message = suite.encode() + b"\0" + b"SIG10000".ljust(128, b"\0")
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert ocra_response(suite, key, question="SIG10000") == expected


def test_short_session_information_is_left_padded() -> None:
    suite = "OCRA-1:HOTP-SHA1-6:QN08-S008"
    short = ocra_response(suite, b"k" * 20, question="12345678", session_info=b"\x01\x02")
    full = ocra_response(suite, b"k" * 20, question="12345678", session_info=bytes(6) + b"\x01\x02")
    other = ocra_response(suite, b"k" * 20, question="12345678", session_info=b"\x01\x02" + bytes(6))
    assert short == full != other


@pytest.mark.parametrize(
    ("suite", "pattern"),
    [
        (DEFAULT_SUITE, r"[0-9]{8}"),
        ("OCRA-1:HOTP-SHA1-6:QA10", r"[A-Z0-9]{10}"),
        ("OCRA-1:HOTP-SHA1-6:QH64", r"[0-9A-F]{64}"),
    ],
)
def test_random_challenges_fit_their_suite(suite: str, pattern: str) -> None:
    challenges = {random_challenge(suite) for _ in range(20)}
    assert all(re.fullmatch(pattern, challenge) for challenge in challenges)
    assert len(challenges) > 1
    for challenge in challenges:
        ocra_response(suite, b"k" * 20, question=challenge)  # accepted as input, too


def test_errors_never_carry_the_key_or_the_question() -> None:
    key = b"very-secret-key-material"
    with pytest.raises(OcraError) as caught:
        ocra_response("OCRA-1:HOTP-SHA1-6:C-QN08", key, question="98765432")
    assert "very-secret" not in str(caught.value)
    assert "98765432" not in str(caught.value)
