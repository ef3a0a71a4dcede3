"""Properties of the chunked-body parser the buffering worker decides with (server.request_framing): any
valid chunking of any body, fed in any pieces, is whole exactly at its end and decodes to the body; no strict
prefix is whole. Bodies may hold the bytes of a last chunk (`\\r\\n0\\r\\n\\r\\n`) in their data."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from server.request_framing import ChunkedBody, RequestState, request_state

_LIMIT = 1 << 20
_FAKE_END = b"\r\n0\r\n\r\n"


def _pieces(data: bytes, cuts: set[int]) -> list[bytes]:
    """`data` cut at `cuts` (positions inside it), in order."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


_BODIES = st.binary(max_size=300) | st.lists(st.sampled_from([_FAKE_END, b"0", b"\r\n", b"x"])).map(b"".join)
_EXTENSIONS = st.sampled_from([b"", b";a", b";a=b", b' ; name = "quoted \\" value"'])
_TRAILERS = st.sampled_from([b"", b"X-T: 1\r\n", b"X-A: 1\r\nX-B: two\r\n"])


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(body, its chunked encoding): random cuts, hex of either case, extensions, trailers."""
    body = draw(_BODIES)
    cuts = draw(st.sets(st.integers(1, len(body) - 1), max_size=8)) if len(body) > 1 else set()
    wire = b""
    for piece in (piece for piece in _pieces(body, cuts) if piece):
        size = b"%x" % len(piece)
        wire += (
            (size.upper() if draw(st.booleans()) else size) + draw(_EXTENSIONS) + b"\r\n" + piece + b"\r\n"
        )
    return body, wire + b"0" + draw(_EXTENSIONS) + b"\r\n" + draw(_TRAILERS) + b"\r\n"


@given(chunked_bodies(), st.data())
def test_a_chunked_body_is_whole_exactly_at_its_end(
    encoded: tuple[bytes, bytes], data: st.DataObject
) -> None:
    """Fed in random pieces: not done before the last piece, done after it, and decoded to the body."""
    body, wire = encoded
    pieces = _pieces(wire, data.draw(st.sets(st.integers(1, len(wire) - 1), max_size=10)))
    parser = ChunkedBody(max_size=_LIMIT, max_wire_bytes=_LIMIT, keep_data=True)
    for index, piece in enumerate(pieces):
        parser.feed(piece)
        assert parser.done == (index == len(pieces) - 1)
    assert bytes(parser.decoded) == body
    assert parser.size == len(body)


@given(chunked_bodies(), st.data())
def test_no_strict_prefix_of_a_chunked_request_is_whole(
    encoded: tuple[bytes, bytes], data: st.DataObject
) -> None:
    _body, wire = encoded
    head = b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    prefix = data.draw(st.integers(0, len(wire) - 1))
    assert request_state(head + wire[:prefix]) is RequestState.INCOMPLETE
    assert request_state(head + wire) is RequestState.COMPLETE


@given(st.binary(min_size=1, max_size=50))
def test_a_pipelined_request_after_the_end_is_left_alone(after: bytes) -> None:
    parser = ChunkedBody(max_size=_LIMIT, max_wire_bytes=_LIMIT, keep_data=True)
    parser.feed(b"2\r\n{}\r\n0\r\n\r\n" + after)
    assert parser.done
    assert parser.decoded == b"{}"
