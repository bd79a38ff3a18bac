"""streamlid: streaming spoken-language identification.

Importing the package stays fast (no numpy, no torch) so that `--help` answers at once and an
early Ctrl-C lands in our own code: the pipeline modules are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Config, load_config
from .errors import StreamlidError

if TYPE_CHECKING:
    from .classifier import Classifier
    from .engine import Engine

__all__ = ["Classifier", "Config", "Engine", "StreamlidError", "load_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "Classifier":
        from .classifier import Classifier

        return Classifier
    if name == "Engine":
        from .engine import Engine

        return Engine
    raise AttributeError(name)
