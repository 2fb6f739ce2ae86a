"""Layer 1, the facts: loading and validating ``data/`` against ``data/schema.yaml`` (:mod:`.loader`), and
typed views of it: chip and model arrays (:mod:`.specs`), exchange rates (:mod:`.fx`), power prices and PUE
by place (:mod:`.places`).

Imports only :mod:`tokenlib.errors` and :mod:`tokenlib.safehtml` from the package. The loader's names are
re-exported here, so ``from tokenlib.data import load`` and ``python -m tokenlib.data check`` work.
"""

from __future__ import annotations

from typing import Any

from tokenlib.data import loader as _loader
from tokenlib.data.loader import *  # noqa: F401,F403  (the loader is this package's public face)
from tokenlib.data.loader import __all__  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """``python -m tokenlib.data`` (:func:`tokenlib.data.check.main`)."""
    from tokenlib.data.check import main as check_main

    return check_main(argv)


def __getattr__(name: str) -> Any:
    # names the loader defines but does not list in __all__ (private helpers used by tests)
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_loader, name)
