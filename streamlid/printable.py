"""Names from the outside world (file names, URLs) made safe to print on a terminal."""

from __future__ import annotations

import re


def printable(text: str) -> str:
    """`text` with its control and format characters (an escape sequence, a newline, a
    right-to-left override in a file name) written as Python escapes: a name shown on a
    terminal must not move the cursor, recolour the screen or forge a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_utf8(text: str) -> bytes:
    """JSON text as UTF-8. A file name that is not UTF-8 reaches Python with lone surrogates
    (b"caf\\xe9" is "caf\\udce9"), which UTF-8 cannot hold, nor strict JSON readers as a
    "\\udce9" escape. Each is written as `printable` writes it, "caf\\xe9": the same text as
    in the stream's name (made with `printable`), so that the two fields agree."""
    return _SURROGATE.sub(lambda m: _escaped(m.group()).replace("\\", "\\\\"), text).encode()
