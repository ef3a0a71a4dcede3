"""`SerialFob`: the host side of the fob protocol, on any port or URL pyserial opens.

A real fob and `FobEmulator` differ only in the port. Every command is one request and one reply; a lost
or garbled reply is retried with the *same* sequence number, which the fob answers from its cache of the
last reply instead of executing the command again, so a retried RESPOND never advances a counter twice.
"""

from __future__ import annotations

import errno
import logging
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import TracebackType
from typing import Self, TypeVar

import serial

from devices.fob.errors import (
    FobError,
    FobErrorCode,
    FobFrameError,
    FobIncompatible,
    FobPortError,
    FobTimeout,
    refusal,
)
from devices.fob.protocol import (
    MAX_SEQ,
    PROTOCOL_VERSION,
    REPLY_MARK,
    TRAFFIC,
    AnswerReply,
    DoneReply,
    ErrorReply,
    FobIdentity,
    FrameReader,
    HelloRequest,
    IdentityReply,
    ProvisionRequest,
    Reply,
    Request,
    RespondRequest,
    WipeRequest,
    parse_reply,
    redact,
)
from devices.ocra import OcraSuite, as_suite

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_TIMEOUT_SECONDS", "SerialFob"]

logger = logging.getLogger(__name__)

# A fob answers in well under a millisecond; a second covers a slow flash write and a busy USB bus.
DEFAULT_TIMEOUT_SECONDS = 1.0
# One try and two retries: enough to ride out line noise, few enough to give up within seconds.
DEFAULT_ATTEMPTS = 3
# CDC-ACM ignores the rate; it matters only for a fob behind a real UART bridge.
BAUDRATE = 115200
_PORT_FAILURES: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
if sys.platform != "win32":
    import termios

    # termios.error is no OSError: pyserial lets it through from tcflush() on a vanished pseudo-terminal.
    _PORT_FAILURES += (termios.error,)
_REPLY = TypeVar("_REPLY", IdentityReply, DoneReply, AnswerReply)
_PORT_REASONS = {
    errno.ENOENT: "no such port",
    errno.ENODEV: "no such device",
    errno.EAGAIN: "in use by another program",
    errno.EBUSY: "in use by another program",
    errno.EACCES: "permission denied (is this user in the fob's group? see udev-rules/README.md)",
}


def _open_port(port: str, timeout_seconds: float) -> serial.SerialBase:
    if port.startswith("spy://"):
        # spy:// logs every byte on the line, the secret of a PROVISION included.
        raise FobPortError("spy:// ports are refused: they would log the fob's secret")
    try:
        return serial.serial_for_url(
            port, baudrate=BAUDRATE, timeout=timeout_seconds, write_timeout=timeout_seconds, exclusive=True
        )
    except (serial.SerialException, OSError, ValueError) as err:
        reason = _PORT_REASONS.get(getattr(err, "errno", None) or 0, "cannot be opened")
        raise FobPortError(f"fob port {port}: {reason}") from err


class SerialFob:
    """A fob on a serial port: `with SerialFob("/dev/tokenward/fob-TW0001") as fob: fob.hello()`.

    The port is opened exclusively; one thread at a time may use the object.
    """

    def __init__(
        self,
        port: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        if timeout_seconds <= 0 or attempts < 1:
            raise ValueError("timeout_seconds must be positive and attempts at least 1")
        self.port = port
        self._timeout_seconds = timeout_seconds
        self._attempts = attempts
        self._serial = _open_port(port, timeout_seconds)
        self._reader = FrameReader(REPLY_MARK)
        self._lines: deque[bytes] = deque()
        # A random start keeps a new session's first request from matching the fob's cached last reply.
        self._seq = secrets.randbelow(MAX_SEQ) + 1

    def close(self) -> None:
        self._serial.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def hello(self) -> FobIdentity:
        """The fob's identity and state; refuses a fob that speaks another protocol version."""
        identity = self._command(HelloRequest, IdentityReply).identity
        if identity.version != PROTOCOL_VERSION:
            raise FobIncompatible(f"the fob speaks protocol {identity.version}, not {PROTOCOL_VERSION}")
        return identity

    def provision(self, suite: OcraSuite | str, secret: bytes, *, pin_hash: bytes | None = None) -> None:
        """Write suite and secret (and the PIN hash of a P suite); the fob's counter starts at 0.

        Raises `FobAlreadyProvisioned` for a fob that holds a secret: wipe it first.
        """
        self._command(
            partial(ProvisionRequest, suite=as_suite(suite), secret=secret, pin_hash=pin_hash), DoneReply
        )

    def respond(
        self,
        challenge: str,
        *,
        counter: int | None = None,
        time_step: int | None = None,
        session_info: bytes | None = None,
    ) -> str:
        """The fob's OCRA response to a challenge.

        For a C suite the fob uses its own counter unless `counter` is given (then it continues from there);
        a T suite needs `time_step` (the fob has no clock: see `devices.ocra.time_step_at`).
        """
        request = partial(
            RespondRequest,
            challenge=challenge,
            counter=counter,
            time_step=time_step,
            session_info=session_info,
        )
        return self._command(request, AnswerReply).response

    def wipe(self, confirm_serial: str) -> None:
        """Erase the fob's secret; `confirm_serial` must be its serial number (`hello().serial`)."""
        self._command(partial(WipeRequest, serial=confirm_serial), DoneReply)

    def _command(self, build: Callable[[int], Request], expected: type[_REPLY]) -> _REPLY:
        self._seq = self._seq % MAX_SEQ + 1
        try:
            request = build(self._seq)
        except FobFrameError as err:
            raise ValueError(f"cannot send this command: {err}") from err
        reply = self._exchange(request)
        if isinstance(reply, ErrorReply):
            raise refusal(reply.code)
        if not isinstance(reply, expected):
            raise FobFrameError(f"the fob answered {reply.VERB} to {request.VERB}")
        return reply

    def _exchange(self, request: Request) -> Reply:
        line = request.encode()
        failure: FobError = FobTimeout("no reply")
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                logger.debug("fob %s: %s; retry %d of %s", self.port, failure, attempt - 1, request.VERB)
            self._send(line)
            outcome = self._await_reply(request.seq)
            if not isinstance(outcome, FobError):
                return outcome
            failure = outcome
        raise type(failure)(f"{failure} after {self._attempts} attempts ({request.VERB} on {self.port})")

    def _send(self, line: bytes) -> None:
        with self._port_errors():
            self._serial.reset_input_buffer()
            self._reader = FrameReader(REPLY_MARK)
            self._lines.clear()
            if logger.isEnabledFor(TRAFFIC):
                logger.log(TRAFFIC, "fob %s <- %s", self.port, redact(line))
            self._serial.write(line)
            self._serial.flush()

    def _await_reply(self, seq: int) -> Reply | FobError:
        """The reply with this sequence number, or why there is none (the caller then sends again)."""
        deadline = time.monotonic() + self._timeout_seconds
        while True:
            while self._lines:
                line = self._lines.popleft()
                if logger.isEnabledFor(TRAFFIC):
                    logger.log(TRAFFIC, "fob %s -> %s", self.port, redact(line))
                try:
                    reply = parse_reply(line)
                except FobFrameError as err:
                    return err
                if isinstance(reply, ErrorReply) and reply.code is FobErrorCode.BAD_FRAME:
                    return FobFrameError("the fob could not read the request")
                if reply.seq == seq:
                    return reply
                logger.debug("fob %s: dropped a stale reply", self.port)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return FobTimeout(f"no reply within {self._timeout_seconds} s")
            self._lines.extend(self._reader.feed(self._read(remaining)))

    def _read(self, timeout_seconds: float) -> bytes:
        with self._port_errors():
            self._serial.timeout = timeout_seconds
            return bytes(self._serial.read(max(1, self._serial.in_waiting)))

    @contextmanager
    def _port_errors(self) -> Iterator[None]:
        try:
            yield
        except serial.SerialTimeoutException as err:
            raise FobTimeout(f"writing to fob port {self.port} timed out") from err
        except _PORT_FAILURES as err:
            raise FobPortError(f"fob port {self.port} failed: unplugged or closed") from err
