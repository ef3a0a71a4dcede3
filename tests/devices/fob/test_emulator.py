"""The emulator as a device: flash that survives restarts and power loss, its lifecycle, and raw frames."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from devices.fob.driver import SerialFob
from devices.fob.emulator import FobEmulator, FobState
from devices.fob.errors import FobErrorCode, FobPortError
from devices.fob.protocol import (
    UNTRUSTED_SEQ,
    AnswerReply,
    ErrorReply,
    Frame,
    HelloRequest,
    IdentityReply,
    RespondRequest,
    parse_reply,
)
from devices.ocra import DEFAULT_SUITE, ocra_response

COUNTER_SUITE = "OCRA-1:HOTP-SHA1-6:C-QN08"
SECRET = bytes(range(20))


def _expected(counter: int) -> str:
    return ocra_response(COUNTER_SUITE, SECRET, question="12345678", counter=counter)


def test_state_survives_a_restart(emulator: FobEmulator) -> None:
    with SerialFob(emulator.port) as fob:
        fob.provision(COUNTER_SUITE, SECRET)
        assert fob.respond("12345678") == _expected(0)
    emulator.stop()
    with FobEmulator(emulator.state_path) as restarted, SerialFob(restarted.port) as fob:
        identity = fob.hello()
        assert (identity.serial, str(identity.suite), identity.counter) == (emulator.serial, COUNTER_SUITE, 1)
        assert fob.respond("12345678") == _expected(1)
    emulator.start()  # the same object powers on again from the file, on a new pseudo-terminal
    with SerialFob(emulator.port) as fob:
        assert fob.respond("12345678") == _expected(2)


def test_power_loss_during_provision_leaves_the_fob_blank(emulator: FobEmulator) -> None:
    before = emulator.state_path.read_bytes()
    emulator.faults.power_loss_on_provision = True
    with SerialFob(emulator.port, timeout_seconds=0.5) as fob, pytest.raises(FobPortError):
        fob.provision(DEFAULT_SUITE, SECRET)
    assert emulator.wait(5)
    emulator.stop()
    assert emulator.state_path.read_bytes() == before
    emulator.start()
    with SerialFob(emulator.port) as fob:
        assert not fob.hello().provisioned
        fob.provision(DEFAULT_SUITE, SECRET)
        assert fob.hello().provisioned


def test_the_state_file_is_private_and_replaced_whole(emulator: FobEmulator) -> None:
    with SerialFob(emulator.port) as fob:
        fob.provision(COUNTER_SUITE, SECRET)
    assert stat.S_IMODE(emulator.state_path.stat().st_mode) == 0o600
    assert [path.name for path in emulator.state_path.parent.iterdir()] == [emulator.state_path.name]
    state = FobState.from_json(json.loads(emulator.state_path.read_text()))
    assert state == FobState(emulator.serial, COUNTER_SUITE, SECRET, None, 0) == emulator.state
    assert SECRET.hex() not in repr(state)


@pytest.mark.parametrize(
    "content",
    [
        "{}",
        "[]",
        '{"format": 1, "serial": "A", "suite": null, "secret": "00", "pin_hash": null, "counter": 0}',
    ],
)
def test_a_damaged_state_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "fob.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="state file"):
        FobEmulator(path)


def test_serial_numbers_are_checked(tmp_path: Path, emulator: FobEmulator) -> None:
    with pytest.raises(ValueError, match="holds fob"):
        FobEmulator(emulator.state_path, serial="OTHER")
    with pytest.raises(ValueError, match="serial number"):
        FobEmulator(tmp_path / "new.json", serial="has space")
    assert FobEmulator(tmp_path / "generated.json").serial.startswith("EMU")


def test_lifecycle(tmp_path: Path) -> None:
    emulated = FobEmulator(tmp_path / "fob.json")
    with pytest.raises(RuntimeError):
        _ = emulated.port
    emulated.start()
    with pytest.raises(RuntimeError):
        emulated.start()
    port = emulated.port
    assert Path(port).exists()
    assert not emulated.wait(0)
    emulated.stop()
    emulated.stop()
    assert not Path(port).exists()


def test_serve_forever_returns_when_stopped(tmp_path: Path) -> None:
    emulated = FobEmulator(tmp_path / "fob.json", serial="CONSOLE1")
    emulated.start()
    server = threading.Thread(target=emulated.serve_forever)
    server.start()
    with SerialFob(emulated.port) as fob:
        assert fob.hello().serial == "CONSOLE1"
    emulated.stop()
    server.join(5)
    assert not server.is_alive()


@pytest.fixture
def raw_port(emulator: FobEmulator) -> Iterator[serial.Serial]:
    """The emulator's port without the driver, to send it what a driver never would."""
    port = serial.serial_for_url(emulator.port, timeout=2, exclusive=True)
    yield port
    port.close()


def _exchange(port: serial.Serial, line: bytes) -> bytes:
    port.write(line)
    reply: bytes = port.read_until(b"\n", 2048)
    return reply


def test_a_garbled_request_gets_bad_frame(raw_port: serial.Serial) -> None:
    garbled = bytearray(HelloRequest(5).encode())
    garbled[3] ^= 0x01
    assert parse_reply(_exchange(raw_port, bytes(garbled))) == ErrorReply(
        UNTRUSTED_SEQ, FobErrorCode.BAD_FRAME
    )
    oversize = b">0006 RESPOND challenge=" + b"1" * 3000 + b"*0000\n"
    assert parse_reply(_exchange(raw_port, oversize)) == ErrorReply(UNTRUSTED_SEQ, FobErrorCode.BAD_FRAME)
    assert isinstance(parse_reply(_exchange(raw_port, HelloRequest(7).encode())), IdentityReply)


def test_an_unknown_command_gets_bad_request(raw_port: serial.Serial) -> None:
    line = Frame(b">", 9, "REBOOT").encode()
    assert parse_reply(_exchange(raw_port, line)) == ErrorReply(9, FobErrorCode.BAD_REQUEST)


def test_a_repeated_line_is_answered_from_the_cache(emulator: FobEmulator) -> None:
    with SerialFob(emulator.port) as fob:
        fob.provision(COUNTER_SUITE, SECRET)
    first = RespondRequest(20, "12345678").encode()
    with serial.serial_for_url(emulator.port, timeout=2, exclusive=True) as raw:
        assert _exchange(raw, first) == _exchange(raw, first) == AnswerReply(20, _expected(0)).encode()
        assert parse_reply(_exchange(raw, RespondRequest(21, "12345678").encode())) == AnswerReply(
            21, _expected(1)
        )
    assert emulator.state.counter == 2
