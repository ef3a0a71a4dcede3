"""`FobEmulator`: the fob's side of the protocol, served on a real pseudo-terminal.

The host talks to `.port` (a `/dev/pts/N` path) with the same `SerialFob` it uses for a real fob. The fob's
state (serial number, suite, secret, PIN hash, counter) lives in a JSON file that is replaced atomically, the
way flash survives a power cycle: a new emulator on the same file is the same fob. `Faults` injects the
failures a host must survive: slow, garbled or lost replies, an unplugged cable, power lost during PROVISION.

`tokenward fob emulate` runs one: `FobEmulator(path, serial=S)`, print `.port`, then `.serve_forever()`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import select
import threading
import tty
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devices.fob.errors import FobErrorCode, FobFrameError, FobRefused
from devices.fob.protocol import (
    MAX_SESSION_BYTES,
    PROTOCOL_VERSION,
    REQUEST_MARK,
    TRAFFIC,
    UNTRUSTED_SEQ,
    WORD_PATTERN,
    AnswerReply,
    DoneReply,
    ErrorReply,
    FobIdentity,
    Frame,
    FrameReader,
    HelloRequest,
    IdentityReply,
    ProvisionRequest,
    Reply,
    Request,
    RespondRequest,
    WipeRequest,
    redact,
    request_from_frame,
)
from devices.ocra import OcraError, OcraSuite, ocra_response

__all__ = ["CAPABILITIES", "FIRMWARE", "MODEL", "Faults", "FobEmulator", "FobState"]

logger = logging.getLogger(__name__)

MODEL = "TW-FOB1-EMU"
FIRMWARE = "emu-1.0"
CAPABILITIES = ("ocra1", "counter", "pin", "session", "time")
_STATE_FORMAT = 1
_LAST_COUNTER = (1 << 64) - 1


@dataclass(frozen=True)
class FobState:
    """What the fob keeps in flash. Blank when `secret` is None."""

    serial: str
    suite: str | None = None
    secret: bytes | None = field(default=None, repr=False)
    pin_hash: bytes | None = field(default=None, repr=False)
    counter: int = 0

    def to_json(self) -> dict[str, Any]:
        def hex_or_none(value: bytes | None) -> str | None:
            return None if value is None else value.hex()

        return {
            "format": _STATE_FORMAT,
            "serial": self.serial,
            "suite": self.suite,
            "secret": hex_or_none(self.secret),
            "pin_hash": hex_or_none(self.pin_hash),
            "counter": self.counter,
        }

    @classmethod
    def from_json(cls, data: Any) -> FobState:
        try:
            state = cls(
                serial=str(data["serial"]),
                suite=str(OcraSuite.parse(data["suite"])) if data["suite"] is not None else None,
                secret=bytes.fromhex(data["secret"]) if data["secret"] is not None else None,
                pin_hash=bytes.fromhex(data["pin_hash"]) if data["pin_hash"] is not None else None,
                counter=int(data["counter"]),
            )
            valid = data["format"] == _STATE_FORMAT and WORD_PATTERN.fullmatch(state.serial) is not None
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError("not a fob emulator state file") from err
        if (
            not valid
            or (state.suite is None) != (state.secret is None)
            or not 0 <= state.counter <= _LAST_COUNTER
        ):
            raise ValueError("not a fob emulator state file")
        return state


def read_state(path: Path) -> FobState | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return FobState.from_json(json.loads(text))


def write_state(path: Path, state: FobState) -> None:
    """Replace the state file atomically: write a temporary file, fsync it, rename it, fsync the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    data = json.dumps(state.to_json(), indent=1).encode("utf-8")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class Faults:
    """Failures to inject. Set them between commands; the counters count down as replies go out."""

    reply_delay_seconds: float = 0.0
    corrupt_replies: int = 0  # flip a bit in each of the next N replies
    drop_replies: int = 0  # send nothing for the next N replies
    disconnect_on_command: bool = False  # the next command arrives, then the port vanishes (unplugged)
    power_loss_on_provision: bool = False  # the next PROVISION is never committed, then the port vanishes
    noise: bytes = b""  # written once, just before the next reply: what a host must resynchronise after


class _Unplugged(Exception):
    """Ends the serving thread the way pulling the fob out would."""


class FobEmulator:
    """An emulated fob whose state is kept in `state_path`; `with FobEmulator(path) as fob: fob.port`."""

    def __init__(self, state_path: str | os.PathLike[str], *, serial: str | None = None) -> None:
        self.state_path = Path(state_path)
        self.faults = Faults()
        state = read_state(self.state_path)
        if state is None:
            state = FobState(serial or f"EMU{secrets.token_hex(4).upper()}")
            if WORD_PATTERN.fullmatch(state.serial) is None:
                raise ValueError("a serial number is 1 to 32 letters, digits, '.', '_' or '-'")
            write_state(self.state_path, state)
        elif serial is not None and serial != state.serial:
            raise ValueError(f"{self.state_path} holds fob {state.serial}, not {serial}")
        self._state = state
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None
        self._port: str | None = None
        self._last: tuple[bytes, bytes] | None = None  # (request line, reply line) for retries

    @property
    def serial(self) -> str:
        return self._state.serial

    @property
    def state(self) -> FobState:
        return self._state

    @property
    def port(self) -> str:
        """The pseudo-terminal to open, e.g. `/dev/pts/3`; a new one after every start()."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    def start(self) -> None:
        """Power on: read the state file, open a pseudo-terminal, serve it in a background thread."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the emulator is already started")
            self._state = read_state(self.state_path) or self._state
            self._last = None
            master, slave = os.openpty()
            # Raw on both ends at once, or the line discipline echoes requests and turns LF into CR LF.
            tty.setraw(master)
            tty.setraw(slave)
            self._port = os.ttyname(slave)
            self._wake = os.pipe()
            self._stopping.clear()
            self._stopped.clear()
            self._thread = threading.Thread(
                target=self._serve,
                args=(master, slave, self._wake[0]),
                name=f"fob-{self.serial}",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Power off (the port vanishes); safe to call twice and after an injected disconnect."""
        with self._lock:
            if self._thread is None or self._wake is None:
                return
            self._stopping.set()
            os.write(self._wake[1], b"\0")
            self._thread.join()
            for fd in self._wake:
                os.close(fd)
            self._thread, self._wake, self._port = None, None, None

    def wait(self, timeout_seconds: float | None = None) -> bool:
        """Block until the emulator stops serving (stop(), or an injected disconnect); False on timeout."""
        return self._stopped.wait(timeout_seconds)

    def serve_forever(self) -> None:
        """Start if needed and serve until stop() is called elsewhere or Ctrl-C; stops on the way out."""
        if self._thread is None:
            self.start()
        try:
            self._stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, master: int, slave: int, wake: int) -> None:
        reader = FrameReader(REQUEST_MARK)
        try:
            while True:
                ready, _, _ = select.select([master, wake], [], [])
                if wake in ready:
                    return
                for line in reader.feed(os.read(master, 4096)):
                    self._on_line(master, line)
        except _Unplugged:
            logger.debug("fob emulator %s: unplugged", self.serial)
        except OSError as err:
            logger.warning("fob emulator %s: pseudo-terminal failed: %s", self.serial, err)
        finally:
            os.close(master)
            os.close(slave)
            self._stopped.set()

    def _on_line(self, master: int, line: bytes) -> None:
        logger.log(TRAFFIC, "fob emulator %s got %s", self.serial, redact(line))
        if self.faults.disconnect_on_command:
            self.faults.disconnect_on_command = False
            raise _Unplugged
        if self._last is not None and self._last[0] == line:
            reply = self._last[1]  # the host sent it again: answer again, do not execute again
        else:
            reply = self._reply_to(line).encode()
            self._last = (line, reply)
        self._deliver(master, reply)

    def _deliver(self, master: int, reply: bytes) -> None:
        faults = self.faults
        if faults.reply_delay_seconds > 0 and self._stopping.wait(faults.reply_delay_seconds):
            return
        if faults.drop_replies > 0:
            faults.drop_replies -= 1
            return
        if faults.corrupt_replies > 0:
            faults.corrupt_replies -= 1
            garbled = bytearray(reply)
            garbled[len(garbled) // 2] ^= 0x01
            reply = bytes(garbled)
        noise, faults.noise = faults.noise, b""
        logger.log(TRAFFIC, "fob emulator %s sent %s", self.serial, redact(reply))
        view = memoryview(noise + reply)
        while view:
            view = view[os.write(master, view) :]

    def _reply_to(self, line: bytes) -> Reply:
        try:
            frame = Frame.parse(line)
        except FobFrameError:
            return ErrorReply(UNTRUSTED_SEQ, FobErrorCode.BAD_FRAME)
        try:
            request = request_from_frame(frame)
        except FobFrameError:
            return ErrorReply(frame.seq, FobErrorCode.BAD_REQUEST)
        try:
            return self._execute(request)
        except FobRefused as refused:
            return ErrorReply(request.seq, refused.code)

    def _execute(self, request: Request) -> Reply:
        if isinstance(request, HelloRequest):
            return IdentityReply(request.seq, self._identity())
        if isinstance(request, ProvisionRequest):
            self._provision(request)
            return DoneReply(request.seq)
        if isinstance(request, RespondRequest):
            return AnswerReply(request.seq, self._respond(request))
        self._wipe(request)
        return DoneReply(request.seq)

    def _identity(self) -> FobIdentity:
        state = self._state
        suite = OcraSuite.parse(state.suite) if state.suite is not None else None
        counter = state.counter if suite is not None and suite.counter else None
        return FobIdentity(PROTOCOL_VERSION, MODEL, state.serial, FIRMWARE, CAPABILITIES, suite, counter)

    def _provision(self, request: ProvisionRequest) -> None:
        if self._state.secret is not None:
            raise FobRefused(FobErrorCode.ALREADY_PROVISIONED)
        suite = request.suite
        if suite.session_length is not None and suite.session_length > MAX_SESSION_BYTES:
            raise FobRefused(FobErrorCode.UNSUPPORTED_SUITE)
        if suite.pin_hash_size != (None if request.pin_hash is None else len(request.pin_hash)):
            raise FobRefused(FobErrorCode.BAD_INPUT)
        provisioned = replace(self._state, suite=str(suite), secret=request.secret, pin_hash=request.pin_hash)
        if self.faults.power_loss_on_provision:
            self.faults.power_loss_on_provision = False
            raise _Unplugged
        self._commit(replace(provisioned, counter=0))

    def _respond(self, request: RespondRequest) -> str:
        state = self._state
        if state.suite is None or state.secret is None:
            raise FobRefused(FobErrorCode.NOT_PROVISIONED)
        suite = OcraSuite.parse(state.suite)
        counter = request.counter
        if suite.counter and counter is None:
            counter = state.counter
        if suite.counter and counter is not None and counter >= _LAST_COUNTER:
            raise FobRefused(FobErrorCode.COUNTER_EXHAUSTED)
        try:
            response = ocra_response(
                suite,
                state.secret,
                question=request.challenge,
                counter=counter,
                pin_hash=state.pin_hash,
                session_info=request.session_info,
                time_step=request.time_step,
            )
        except OcraError as err:
            raise FobRefused(FobErrorCode.BAD_INPUT) from err
        if suite.counter and counter is not None:
            # Committed before the reply leaves: after a power loss the fob never reuses a counter value.
            self._commit(replace(state, counter=counter + 1))
        return response

    def _wipe(self, request: WipeRequest) -> None:
        if request.serial != self._state.serial:
            raise FobRefused(FobErrorCode.WRONG_SERIAL)
        self._commit(FobState(self._state.serial))

    def _commit(self, state: FobState) -> None:
        try:
            write_state(self.state_path, state)
        except OSError as err:
            logger.warning("fob emulator %s: cannot write %s: %s", self.serial, self.state_path, err)
            raise FobRefused(FobErrorCode.STORAGE_FAILURE) from err
        self._state = state
