"""Large letters for the current language, readable from a metre away.

A 5-pixel-high font drawn with half blocks (two pixels per terminal row), so each letter is
3 rows tall and about 4 columns wide: "PORTUGUESE" needs 40 columns. Only what language names
need is drawn; `big_lines` returns None for anything else, and the caller falls back to text.
"""

from __future__ import annotations

import unicodedata

BIG_ROWS = 3  # terminal rows of one line of big text

# "#" is a lit pixel. Every glyph has 5 rows; widths vary (M and W need 5).
_FONT: dict[str, tuple[str, ...]] = {
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#...#", "##.##", "#.#.#", "#...#", "#...#"),
    "N": ("#..#", "##.#", "#.##", "#..#", "#..#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#...#", "#...#", "#.#.#", "##.##", "#...#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#", "##", ".#", ".#", ".#"),
    "2": ("##.", "..#", ".#.", "#..", "###"),
    "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", ".#.", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "##."),
    " ": ("..", "..", "..", "..", ".."),
    "-": ("...", "...", "###", "...", "..."),
    "'": ("#", "#", ".", ".", "."),
    ".": (".", ".", ".", ".", "#"),
    ",": ("..", "..", "..", ".#", "#."),
    "(": (".#", "#.", "#.", "#.", ".#"),
    ")": ("#.", ".#", ".#", ".#", "#."),
    "?": ("##.", "..#", ".#.", "...", ".#."),
    "…": (".....", ".....", ".....", ".....", "#.#.#"),
}

# (upper pixel, lower pixel) -> one terminal cell
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def _fold(text: str) -> str:
    """Upper case, accents dropped ("Bokmål" -> "BOKMAL"): the font has no diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.upper())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def big_width(text: str) -> int | None:
    """Columns `text` needs in big letters, or None if the font cannot draw it."""
    folded = _fold(text)
    if not folded or any(ch not in _FONT for ch in folded):
        return None
    return sum(len(_FONT[ch][0]) for ch in folded) + len(folded) - 1


def big_lines(text: str, max_width: int) -> list[str] | None:
    """`text` as BIG_ROWS strings of half blocks, or None if it cannot be drawn in max_width."""
    width = big_width(text)
    if width is None or width > max_width:
        return None
    pixel_rows = ["" for _ in range(5)]
    for i, ch in enumerate(_fold(text)):
        for r, row in enumerate(_FONT[ch]):
            pixel_rows[r] += ("." if i else "") + row
    pixel_rows.append("." * width)  # pad to an even number of pixel rows
    lines = []
    for r in range(0, 6, 2):
        top, bottom = pixel_rows[r], pixel_rows[r + 1]
        lines.append(
            "".join(_HALF[(a == "#", b == "#")] for a, b in zip(top, bottom, strict=True)).rstrip()
        )
    return lines
