"""`python -m streamlid`."""

from .cli import main

raise SystemExit(main())
