"""streamlid: streaming spoken-language identification.

Importing the package stays fast (no torch): the classifier is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Config, load_config
from .engine import Engine
from .errors import StreamlidError

if TYPE_CHECKING:
    from .classifier import Classifier

__all__ = ["Classifier", "Config", "Engine", "StreamlidError", "load_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "Classifier":
        from .classifier import Classifier

        return Classifier
    raise AttributeError(name)
