"""Layer 4, the book: charts and the figure pipeline (:mod:`.charts`, :mod:`.figures`), reader tables
(:mod:`.tables`), the data appendix (:mod:`.datadoc`), the Sphinx extension (:mod:`.sphinxext`), the
findings ledger (:mod:`.findings`), re-running a chapter (:mod:`.run`), JupyterLab settings (:mod:`.lab`) and
facts about the book itself: its toc, execution fingerprint and versioned site (:mod:`.toc`).

May import every lower layer. ``python -m tokenlib.book`` runs :func:`tokenlib.book.toc.main`.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # Before the layers, ``tokenlib.book`` was the toc module; its functions still resolve here.
    toc = importlib.import_module("tokenlib.book.toc")
    if name.startswith("__") or not hasattr(toc, name):
        raise AttributeError(f"module 'tokenlib.book' has no attribute {name!r}")
    return getattr(toc, name)
