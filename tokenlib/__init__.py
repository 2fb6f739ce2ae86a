"""tokenlib: data, inference cost kernel and chart helpers for the Token Capital book.

The public API is imported lazily, so ``python -m tokenlib.data`` and other module entry points run
without importing the whole package first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "throughput": "tokenlib.kernel",
    "static_batch_throughput": "tokenlib.kernel",
    "cost_per_mtok": "tokenlib.cost",
    "fleet_economics": "tokenlib.fleet",
    "validate": "tokenlib.calibrate",
    "MemoryFitError": "tokenlib.kernel",
    "load": "tokenlib.data",
    "DataValidationError": "tokenlib.data",
    "UnknownChoiceError": "tokenlib.errors",
}

if TYPE_CHECKING:
    from tokenlib.calibrate import validate
    from tokenlib.cost import cost_per_mtok
    from tokenlib.fleet import fleet_economics
    from tokenlib.kernel import MemoryFitError, static_batch_throughput, throughput
    from tokenlib.data import DataValidationError, load
    from tokenlib.errors import UnknownChoiceError

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
