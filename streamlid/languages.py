"""ISO 639-3 codes to English names (via langcodes), and matching user-typed codes to labels."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import lru_cache

from .errors import ConfigError

UNKNOWN_NAME = "unknown"


@lru_cache(maxsize=4096)
def language_name(code: str | None) -> str:
    """English name for a code ("fra" -> "French"); the code itself when none is known."""
    if code is None:
        return UNKNOWN_NAME
    try:
        import langcodes

        language = langcodes.Language.get(code)
        name = language.display_name("en")
    except Exception:  # malformed or unknown tags: the code is the most honest label
        return code
    if not name or name.lower().startswith("unknown language"):
        return code
    return name


def _to_alpha3(code: str) -> str | None:
    """ISO 639-1 (or any tag langcodes knows) to ISO 639-3, e.g. "de" -> "deu"."""
    try:
        import langcodes

        return langcodes.Language.get(code).to_alpha3()
    except Exception:
        return None


def match_languages(requested: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Indices into `labels` of the requested codes; a clear error for any code not there."""
    chosen: list[int] = []
    for raw in requested:
        i = _label_index(raw, labels, "Language")
        if i not in chosen:
            chosen.append(i)
    if len(chosen) < 2:
        raise ConfigError(
            "languages needs at least two codes to choose between (e.g. eng,fra), or none for all."
        )
    return chosen


def expected_codes(requested: Sequence[str], labels: Sequence[str], what: str) -> tuple[str, ...]:
    """The model's own labels for the languages a stream is expected to carry ("de" -> "deu",
    as `--languages` takes them). A code the model cannot name is refused: every answer would
    be unexpected, and its alert would fire on the right language too."""
    return tuple(dict.fromkeys(labels[_label_index(raw, labels, what)] for raw in requested))


def _label_index(raw: str, labels: Sequence[str], what: str) -> int:
    index = {label.lower(): i for i, label in enumerate(labels)}
    code = raw.strip().lower()
    i = index.get(code)
    if i is None:
        alpha3 = _to_alpha3(code)
        i = index.get(alpha3) if alpha3 else None
    if i is None:
        close = difflib.get_close_matches(code, list(index), n=4, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "see the model's labels"
        raise ConfigError(
            f"{what} {raw!r} is not one of this model's {len(labels)} languages "
            f"({hint}); use ISO 639-3 codes such as eng, fra, deu."
        )
    return i
