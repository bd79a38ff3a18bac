"""`python -m streamlid`."""

from .cli import entry

entry()
