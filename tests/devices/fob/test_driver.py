"""`SerialFob` over a real pseudo-terminal: commands, refusals, retries and injected faults.

Tests taking `fob` also run against a bench fob (`--fob-port`); those taking `emulator` or `quick_fob` need
the emulator's fault injection and are skipped there.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

import pytest

from devices.fob.driver import SerialFob
from devices.fob.emulator import MODEL, FobEmulator
from devices.fob.errors import (
    FobAlreadyProvisioned,
    FobErrorCode,
    FobFrameError,
    FobNotProvisioned,
    FobPortError,
    FobRefused,
    FobTimeout,
)
from devices.fob.protocol import PROTOCOL_VERSION, TRAFFIC
from devices.ocra import DEFAULT_SUITE, OcraSuite, hash_pin, ocra_response, random_challenge, time_step_at

COUNTER_SUITE = "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1"
SECRET = bytes(range(32))


def test_handshake(fob: SerialFob) -> None:
    identity = fob.hello()
    assert identity.version == PROTOCOL_VERSION
    assert not identity.provisioned and identity.suite is None and identity.counter is None
    assert "ocra1" in identity.capabilities and identity.serial


def test_handshake_names_the_emulated_fob(emulator: FobEmulator) -> None:
    with SerialFob(emulator.port) as fob:
        identity = fob.hello()
    assert (identity.serial, identity.model) == (emulator.serial, MODEL)


@pytest.mark.parametrize(
    "suite_text",
    [
        DEFAULT_SUITE,
        COUNTER_SUITE,
        "OCRA-1:HOTP-SHA512-8:QN08-T1M",
        "OCRA-1:HOTP-SHA1-10:QA10-S064",
        "OCRA-1:HOTP-SHA256-0:C-QH16-T30S",
    ],
)
def test_provision_then_respond_matches_ocra(fob: SerialFob, suite_text: str) -> None:
    suite = OcraSuite.parse(suite_text)
    secret = secrets.token_bytes(32)
    pin_hash = hash_pin(suite, "1234") if suite.pin_hash_name else None
    fob.provision(suite_text, secret, pin_hash=pin_hash)
    assert fob.hello().suite == suite
    for counter in range(3):
        challenge = random_challenge(suite)
        time_step = time_step_at(suite, time.time()) if suite.time_step else None
        session_info = secrets.token_bytes(40) if suite.session_length else None
        expected = ocra_response(
            suite,
            secret,
            question=challenge,
            counter=counter if suite.counter else None,
            pin_hash=pin_hash,
            session_info=session_info,
            time_step=time_step,
        )
        assert fob.respond(challenge, time_step=time_step, session_info=session_info) == expected
    assert fob.hello().counter == (3 if suite.counter else None)


def test_provision_is_refused_when_provisioned(fob: SerialFob) -> None:
    fob.provision(DEFAULT_SUITE, SECRET)
    with pytest.raises(FobAlreadyProvisioned) as refused:
        fob.provision(DEFAULT_SUITE, bytes(32))
    assert refused.value.code is FobErrorCode.ALREADY_PROVISIONED
    assert fob.respond("12345678") == ocra_response(DEFAULT_SUITE, SECRET, question="12345678")


def test_wipe_then_provision_again(fob: SerialFob) -> None:
    fob.provision(COUNTER_SUITE, SECRET, pin_hash=hash_pin(COUNTER_SUITE, "1234"))
    fob.respond("12345678")
    fob.wipe(fob.hello().serial)
    assert not fob.hello().provisioned
    with pytest.raises(FobNotProvisioned):
        fob.respond("12345678")
    fob.provision(DEFAULT_SUITE, bytes(20))
    assert fob.respond("00000000") == ocra_response(DEFAULT_SUITE, bytes(20), question="00000000")


def test_wipe_needs_the_fobs_own_serial(fob: SerialFob) -> None:
    fob.provision(DEFAULT_SUITE, SECRET)
    with pytest.raises(FobRefused) as refused:
        fob.wipe("SOMEONE-ELSE")
    assert refused.value.code is FobErrorCode.WRONG_SERIAL
    assert fob.hello().provisioned


def test_the_fob_keeps_its_own_counter_unless_told(fob: SerialFob) -> None:
    pin_hash = hash_pin(COUNTER_SUITE, "1234")
    fob.provision(COUNTER_SUITE, SECRET, pin_hash=pin_hash)

    def expected(counter: int) -> str:
        return ocra_response(COUNTER_SUITE, SECRET, question="12345678", counter=counter, pin_hash=pin_hash)

    assert fob.respond("12345678") == expected(0)
    assert fob.respond("12345678", counter=10) == expected(10)
    assert fob.respond("12345678") == expected(11)
    assert fob.hello().counter == 12


@pytest.mark.parametrize(
    ("suite", "challenge", "extra"),
    [
        (DEFAULT_SUITE, "123456789", {}),  # longer than QN08
        (DEFAULT_SUITE, "1234567A", {}),  # not numeric
        (DEFAULT_SUITE, "12345678", {"counter": 1}),  # no C in the suite
        ("OCRA-1:HOTP-SHA512-8:QN08-T1M", "12345678", {}),  # no time step
        ("OCRA-1:HOTP-SHA1-6:QN08-S004", "12345678", {"session_info": bytes(5)}),
    ],
)
def test_inputs_that_do_not_fit_the_suite_are_refused(
    fob: SerialFob, suite: str, challenge: str, extra: dict[str, object]
) -> None:
    fob.provision(suite, SECRET)
    with pytest.raises(FobRefused) as refused:
        fob.respond(challenge, **extra)  # type: ignore[arg-type]
    assert refused.value.code is FobErrorCode.BAD_INPUT


def test_unsupported_and_inconsistent_provisioning_is_refused(fob: SerialFob) -> None:
    with pytest.raises(FobRefused) as refused:
        fob.provision("OCRA-1:HOTP-SHA1-6:QN08-S512", SECRET)
    assert refused.value.code is FobErrorCode.UNSUPPORTED_SUITE
    with pytest.raises(FobRefused) as refused:
        fob.provision("OCRA-1:HOTP-SHA1-6:QN08-PSHA256", SECRET, pin_hash=bytes(20))
    assert refused.value.code is FobErrorCode.BAD_INPUT
    assert not fob.hello().provisioned


def test_arguments_that_cannot_be_sent_are_value_errors(fob: SerialFob) -> None:
    with pytest.raises(ValueError, match="secret length"):
        fob.provision(DEFAULT_SUITE, bytes(8))
    with pytest.raises(ValueError, match="challenge"):
        fob.respond("12 34")
    with pytest.raises(ValueError):
        fob.provision("OCRA-1:HOTP-SHA1-6:QN8", SECRET)


def test_a_corrupted_reply_is_retried_transparently(emulator: FobEmulator, quick_fob: SerialFob) -> None:
    quick_fob.provision(DEFAULT_SUITE, SECRET)
    emulator.faults.corrupt_replies = 1
    assert quick_fob.respond("12345678") == ocra_response(DEFAULT_SUITE, SECRET, question="12345678")
    assert emulator.faults.corrupt_replies == 0


def test_only_corrupted_replies_give_a_frame_error(emulator: FobEmulator, quick_fob: SerialFob) -> None:
    emulator.faults.corrupt_replies = 3
    with pytest.raises(FobFrameError):
        quick_fob.hello()
    assert quick_fob.hello().serial == emulator.serial


def test_a_dropped_reply_is_retried(emulator: FobEmulator, quick_fob: SerialFob) -> None:
    emulator.faults.drop_replies = 2
    assert quick_fob.hello().serial == emulator.serial
    assert emulator.faults.drop_replies == 0


def test_dropped_replies_end_in_a_timeout(
    emulator: FobEmulator, quick_fob: SerialFob, quick_timeout_seconds: float
) -> None:
    emulator.faults.drop_replies = 3
    started = time.monotonic()
    with pytest.raises(FobTimeout, match="3 attempts"):
        quick_fob.hello()
    assert time.monotonic() - started >= 3 * quick_timeout_seconds
    assert quick_fob.hello().serial == emulator.serial


def test_a_reply_later_than_the_timeout_is_a_timeout_and_then_stale(
    emulator: FobEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.faults.reply_delay_seconds = 0.3
    with SerialFob(emulator.port, timeout_seconds=0.1, attempts=1) as impatient, pytest.raises(FobTimeout):
        impatient.hello()
    emulator.faults.reply_delay_seconds = 0.0
    caplog.set_level(logging.DEBUG, logger="devices.fob.driver")
    with SerialFob(emulator.port) as fob:
        fob.provision(DEFAULT_SUITE, SECRET)  # the late IDENT arrives first and must not be taken for OK
        assert fob.hello().provisioned
    assert any("stale" in record.getMessage() for record in caplog.records)


def test_a_retried_respond_does_not_advance_the_counter_twice(
    emulator: FobEmulator, quick_fob: SerialFob
) -> None:
    pin_hash = hash_pin(COUNTER_SUITE, "1234")
    quick_fob.provision(COUNTER_SUITE, SECRET, pin_hash=pin_hash)
    emulator.faults.drop_replies = 1
    response = quick_fob.respond("12345678")
    assert response == ocra_response(COUNTER_SUITE, SECRET, question="12345678", counter=0, pin_hash=pin_hash)
    assert quick_fob.hello().counter == 1


def test_noise_before_a_reply_is_skipped(
    emulator: FobEmulator, quick_fob: SerialFob, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="devices.fob.driver")
    emulator.faults.noise = b"\x00\xff\r\nboot v0.9 \xc3\x28 <0F"  # ends in a cut-off frame
    assert quick_fob.hello().serial == emulator.serial
    assert not any("retry" in record.getMessage() for record in caplog.records)
    emulator.faults.noise = b"\n" * 3 + b"<" + b"9" * 3000  # an oversize fragment, then the real reply
    assert quick_fob.hello().serial == emulator.serial


def test_unplugged_mid_command_is_a_port_error(emulator: FobEmulator, quick_fob: SerialFob) -> None:
    emulator.faults.disconnect_on_command = True
    with pytest.raises(FobPortError):
        quick_fob.hello()
    assert emulator.wait(5)
    with pytest.raises(FobPortError):
        quick_fob.hello()


def test_a_missing_port_is_a_port_error(tmp_path: Path) -> None:
    with pytest.raises(FobPortError, match="no such port"):
        SerialFob(str(tmp_path / "ttyACM9"))


def test_a_busy_port_is_a_port_error(fob_port: str, fob: SerialFob) -> None:
    with pytest.raises(FobPortError, match="in use"):
        SerialFob(fob_port)
    assert fob.hello().version == PROTOCOL_VERSION


def test_spy_urls_are_refused(fob_port: str) -> None:
    with pytest.raises(FobPortError, match="spy"):
        SerialFob(f"spy://{fob_port}")


def test_traffic_is_logged_below_debug_and_redacted(fob: SerialFob, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRAFFIC, logger="devices.fob")
    fob.provision(DEFAULT_SUITE, SECRET)
    response = fob.respond("12345678")
    traffic = [record for record in caplog.records if record.levelno == TRAFFIC]
    logged = "\n".join(record.getMessage() for record in traffic)
    assert "PROVISION" in logged and "ANSWER" in logged and "<redacted>" in logged
    assert SECRET.hex() not in logged and f"response={response}" not in logged
