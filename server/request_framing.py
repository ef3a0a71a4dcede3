"""Where an HTTP/1.1 request ends, judged from its bytes as they arrive (for the buffering gunicorn worker).

Only the framing is judged here: the end of the head, then a Content-Length's count of bytes or the chunked
coding's chunks (RFC 9112 section 7.1). A request whose framing is whole is handed to gunicorn's parser, which
judges everything else. A chunked body is parsed, never guessed from how the bytes end (the bytes of a
last chunk inside a chunk's data are data). Chunk-size lines are checked as gunicorn checks them (hex
digits, then extensions matching gunicorn's own pattern), so a body called whole here is one gunicorn reads
to its end.
"""

from __future__ import annotations

import enum

from gunicorn.http.body import CHUNK_EXT_RE

HEAD_LIMIT_BYTES = 32 * 1024  # request line and headers; gunicorn's own limits are per line and count
BODY_BUFFER_LIMIT_BYTES = 1024 * 1024
CHUNK_SIZE_LINE_LIMIT_BYTES = 4096  # hex digits and extensions; gunicorn's own bound is its field size (8190)
TRAILER_LIMIT_BYTES = HEAD_LIMIT_BYTES
_HEAD_END = b"\r\n\r\n"
_CRLF = b"\r\n"
_LENGTH_DIGITS_LIMIT = 18  # more is no length anyone sends (and int() refuses over 4300 digits)
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class RequestState(enum.Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"  # or malformed in a way gunicorn's parser refuses itself
    HEAD_TOO_LARGE = "head_too_large"
    MALFORMED = "malformed"  # framing that is not valid (head or chunks): 400
    BODY_TOO_LARGE = "body_too_large"  # a chunked body over the limit: 413


class ChunkedFramingError(ValueError):
    """The chunked framing is not valid."""


class ChunkedBodyTooLarge(ValueError):
    """The chunked body is larger than allowed."""


class _Part(enum.Enum):
    SIZE_LINE = "size_line"
    DATA = "data"
    DATA_END = "data_end"
    TRAILERS = "trailers"
    DONE = "done"


class ChunkedBody:
    """An incremental parser of a chunked body: `feed` it bytes as they come; `done` once the last chunk and
    the trailer section (or its empty line) have arrived. Bytes after the end are left alone (a pipelined
    request). `decoded` keeps the data only when asked (`keep_data`); `size` counts it always. Each byte is
    looked at about once: only an unfinished line (at most a chunk-size line or a trailer section) is kept."""

    def __init__(self, *, max_size: int, max_wire_bytes: int, keep_data: bool = False) -> None:
        self.max_size, self.max_wire_bytes, self.keep_data = max_size, max_wire_bytes, keep_data
        self.size = 0
        self.decoded = bytearray()
        self._part = _Part.SIZE_LINE
        self._pending = b""  # the start of a line or trailer section still unfinished
        self._resume = 0  # where in `_pending` to search on: what was searched holds no terminator
        self._chunk_left = 0
        self._wire_bytes = 0

    @property
    def done(self) -> bool:
        return self._part is _Part.DONE

    def feed(self, data: bytes) -> None:
        """Consume `data`; raises ChunkedFramingError or ChunkedBodyTooLarge."""
        if self.done:
            return
        self._wire_bytes += len(data)
        buf, self._pending = self._pending + data, b""
        pos = 0
        while pos < len(buf) and not self.done:
            pos = self._step(buf, pos)
        if not self.done and self._wire_bytes > self.max_wire_bytes:
            raise ChunkedBodyTooLarge

    def _step(self, buf: bytes, pos: int) -> int:
        """Parses from `pos`; returns where the next step starts."""
        if self._part is _Part.DATA:
            taken = min(self._chunk_left, len(buf) - pos)
            if self.keep_data:
                self.decoded += buf[pos : pos + taken]
            self._chunk_left -= taken
            if not self._chunk_left:
                self._part = _Part.DATA_END
            return pos + taken
        if self._part is _Part.DATA_END:
            if len(buf) - pos < 2:
                return self._keep(buf, pos, 0)
            if buf[pos : pos + 2] != _CRLF:
                raise ChunkedFramingError("chunk data not followed by CRLF")
            self._part = _Part.SIZE_LINE
            return pos + 2
        if self._part is _Part.SIZE_LINE:
            return self._read_size_line(buf, pos)
        return self._read_trailers(buf, pos)

    def _keep(self, buf: bytes, pos: int, searched: int) -> int:
        self._pending, self._resume = buf[pos:], max(0, searched)
        return len(buf)

    def _read_size_line(self, buf: bytes, pos: int) -> int:
        start, self._resume = pos + self._resume, 0
        end = buf.find(_CRLF, start, pos + CHUNK_SIZE_LINE_LIMIT_BYTES + 2)
        if end < 0:
            if len(buf) - pos > CHUNK_SIZE_LINE_LIMIT_BYTES or b"\n" in buf[pos:]:
                raise ChunkedFramingError("chunk-size line too long, or ended by a bare LF")
            return self._keep(buf, pos, len(buf) - pos - 1)  # a CR may end what arrived
        size = _chunk_size(buf[pos:end])
        if size == 0:
            self._part = _Part.TRAILERS
        else:
            self.size += size
            if self.size > self.max_size:
                raise ChunkedBodyTooLarge
            self._chunk_left, self._part = size, _Part.DATA
        return end + 2

    def _read_trailers(self, buf: bytes, pos: int) -> int:
        """After the last chunk: an empty line, or trailer fields ending with one."""
        start, self._resume = pos + self._resume, 0
        if buf[pos : pos + 2] == _CRLF:
            self._part = _Part.DONE
            return pos + 2
        found = buf.find(_HEAD_END, start, pos + TRAILER_LIMIT_BYTES + 4)
        section = buf[pos : found + 4] if found >= 0 else buf[pos:]
        if section.count(b"\n") != section.count(_CRLF):  # the end could otherwise never come
            raise ChunkedFramingError("bare LF in the trailer section")
        if found < 0:
            if len(buf) - pos > TRAILER_LIMIT_BYTES:
                raise ChunkedFramingError("trailer section too long")
            return self._keep(buf, pos, len(buf) - pos - 3)
        self._part = _Part.DONE
        return found + 4


def _chunk_size(line: bytes) -> int:
    """The size of a chunk-size line (`1a`, `1a;name=value`), checked as gunicorn checks it."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        if b"\r" in extensions or not CHUNK_EXT_RE.fullmatch(b";" + extensions):
            raise ChunkedFramingError("invalid chunk extension")
        size = size.rstrip(b" \t")
    if not size or not _HEX_DIGITS.issuperset(size):
        raise ChunkedFramingError("invalid chunk size")
    return int(size, 16)


class RequestReader:
    """The bytes one request has sent so far, and whether they are a whole request."""

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.received = bytearray()
        self._head_end = -1
        self._content_length: int | None = None
        self._chunked: ChunkedBody | None = None

    def feed(self, data: bytes) -> RequestState:
        searched = max(0, len(self.received) - 3)
        self.received += data
        if self._head_end < 0:
            end = self.received.find(_HEAD_END, searched)
            if end < 0:
                too_large = len(self.received) > HEAD_LIMIT_BYTES
                return RequestState.HEAD_TOO_LARGE if too_large else RequestState.INCOMPLETE
            self._head_end = end + len(_HEAD_END)
            state = self._read_head(bytes(self.received[:end]))
            if state is not None:
                return state
            data = bytes(self.received[self._head_end :])
        if self._chunked is not None:
            return self._feed_chunked(data)
        body_bytes = len(self.received) - self._head_end
        length = self._content_length
        if length is None or body_bytes >= length or length > BODY_BUFFER_LIMIT_BYTES:
            return RequestState.COMPLETE  # above the limit: handed over as it comes, the app refuses it
        return RequestState.INCOMPLETE

    def _feed_chunked(self, data: bytes) -> RequestState:
        assert self._chunked is not None
        try:
            self._chunked.feed(data)
        except ChunkedFramingError:
            return RequestState.MALFORMED
        except ChunkedBodyTooLarge:
            return RequestState.BODY_TOO_LARGE
        return RequestState.COMPLETE if self._chunked.done else RequestState.INCOMPLETE

    def _read_head(self, head: bytes) -> RequestState | None:
        """Notes the body's framing; MALFORMED when the head alone shows it cannot be judged (RFC 9112 section
        6.3: a Content-Length that is not a number or comes twice, a Transfer-Encoding with a Content-Length
        or not ending with one chunked). These are answered by the worker's loop, never handed on."""
        codings: list[bytes] = []
        lengths: list[bytes] = []
        for line in head.split(_CRLF)[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings += [coding.strip(b" \t").lower() for coding in value.split(b",")]
        if len(lengths) > 1 or (
            lengths and not (lengths[0].isdigit() and len(lengths[0]) <= _LENGTH_DIGITS_LIMIT)
        ):
            return RequestState.MALFORMED
        if not codings:
            self._content_length = int(lengths[0]) if lengths else None
            return None
        if lengths or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
            return RequestState.MALFORMED
        self._chunked = ChunkedBody(
            max_size=self.max_body_bytes, max_wire_bytes=max(BODY_BUFFER_LIMIT_BYTES, 2 * self.max_body_bytes)
        )
        return None


def request_state(data: bytes, *, max_body_bytes: int = BODY_BUFFER_LIMIT_BYTES) -> RequestState:
    """Whether `data` (what a connection has sent so far) holds a whole HTTP/1.1 request."""
    return RequestReader(max_body_bytes=max_body_bytes).feed(data)
