"""XML bytes to text by XML 1.0's own encoding rules (Appendix F), so that a check made on the text sees
what an XML parser would see, whatever the file's encoding.

`xml_text` decodes: a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) decides; without one, the zero bytes
around the first characters reveal UTF-16 or UTF-32; otherwise the encoding declaration, if any, names an
ASCII-compatible encoding (UTF-8 when there is none). `as_utf8_document` gives the same text back as UTF-8
bytes without an encoding declaration, so that the parser reads exactly the text that was checked.
"""

from __future__ import annotations

import codecs
import re

_BYTE_ORDER_MARKS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# Declared encodings read without a byte order mark: ASCII-compatible ones only (the declaration itself is
# read as ASCII). Python's codec names after `codecs.lookup`.
_ASCII_COMPATIBLE = frozenset({"utf-8", "ascii", "iso8859-1", "latin-1"})
_DECLARATION = re.compile(r"""\A<\?xml\s[^>]*?\?>""")
_DECLARED_ENCODING = re.compile(r"""\A<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")


class XmlEncodingError(ValueError):
    """The bytes are not text in an encoding an XML parser could be made to read them in, as far as we
    accept (the message names the encoding, never the content)."""


def detected_encoding(data: bytes) -> tuple[str, int]:
    """(Python codec name, length of the byte order mark) for XML bytes."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return encoding, len(mark)
    head = data[:4]
    if len(head) == 4 and head[0] == head[1] == 0:
        return "utf-32-be", 0
    if len(head) == 4 and head[1] == head[2] == head[3] == 0:
        return "utf-32-le", 0
    if len(head) >= 2 and head[0] == 0:
        return "utf-16-be", 0
    if len(head) >= 2 and head[1] == 0:
        return "utf-16-le", 0
    declared = _DECLARED_ENCODING.match(data[:200].decode("latin-1").lstrip())
    if declared is None:
        return "utf-8", 0
    try:
        encoding = codecs.lookup(declared.group(1)).name
    except LookupError:
        raise XmlEncodingError(f"the declared encoding {declared.group(1)!r} is not known") from None
    if encoding not in _ASCII_COMPATIBLE:
        raise XmlEncodingError(f"the declared encoding {declared.group(1)!r} is not supported")
    return encoding, 0


def xml_text(data: bytes) -> str:
    """The document as text (without a byte order mark), decoded as an XML parser would decode it."""
    encoding, mark_length = detected_encoding(data)
    try:
        return data[mark_length:].decode(encoding)
    except UnicodeDecodeError:
        raise XmlEncodingError(f"the file is not valid {encoding.upper()} text") from None


def as_utf8_document(text: str) -> bytes:
    """`text` as UTF-8 bytes with its XML declaration (and so any encoding it names) removed: a parser then
    reads UTF-8, the default, and sees exactly `text`."""
    return _DECLARATION.sub("", text.lstrip(), count=1).encode("utf-8")
