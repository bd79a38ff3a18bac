"""Names from the outside world (file names, URLs) made safe to print on a terminal."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with its control and format characters (an escape sequence, a newline, a
    right-to-left override in a file name) written as Python escapes: a name shown on a
    terminal must not move the cursor, recolour the screen or forge a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def json_utf8(text: str) -> bytes:
    """JSON text as UTF-8. A file name that is not UTF-8 reaches Python with lone surrogates
    (b"caf\\xe9" is "caf\\udce9"), which UTF-8 cannot hold; each is written as "\\udce9", which
    inside a JSON string is its own escape: valid UTF-8, and a JSON reader gets the very name."""
    return text.encode("utf-8", "backslashreplace")
