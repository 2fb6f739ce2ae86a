"""tokenlib: data, inference cost kernel and chart helpers for the Token Capital book.

The package is in layers, each importing only the ones below it (``tests/test_layers.py`` checks it;
``ARCHITECTURE.md`` draws them): the base modules :mod:`tokenlib.errors` and :mod:`tokenlib.safehtml`;
:mod:`tokenlib.data` (the facts); :mod:`tokenlib.model` (kernel, cost, calibration, fleet);
:mod:`tokenlib.analysis` (what the chapters compute); :mod:`tokenlib.book` (charts, figures, tables, the
Sphinx extension); and the command line, :mod:`tokenlib.cli`.

The public API is imported lazily, so ``python -m tokenlib.data`` and other module entry points run
without importing the whole package first. The flat module names of versions before the layers
(``tokenlib.kernel``, ``tokenlib.cost``, ...) still import, with a :class:`DeprecationWarning` naming the
new place (:data:`MOVED`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "throughput": "tokenlib.model.kernel",
    "static_batch_throughput": "tokenlib.model.kernel",
    "cost_per_mtok": "tokenlib.model.cost",
    "frontier": "tokenlib.model.frontier",
    "KernelOptions": "tokenlib.model.kernel",
    "Speculative": "tokenlib.model.kernel",
    "CostAssumptions": "tokenlib.model.cost",
    "fleet_economics": "tokenlib.model.fleet",
    "validate": "tokenlib.model.calibrate",
    "MemoryFitError": "tokenlib.model.kernel",
    "load": "tokenlib.data",
    "DataValidationError": "tokenlib.data",
    "UnknownChoiceError": "tokenlib.errors",
}

if TYPE_CHECKING:
    from tokenlib.model.calibrate import validate
    from tokenlib.model.cost import CostAssumptions, cost_per_mtok
    from tokenlib.model.frontier import frontier
    from tokenlib.model.fleet import fleet_economics
    from tokenlib.model.kernel import KernelOptions, MemoryFitError, Speculative, static_batch_throughput, throughput
    from tokenlib.data import DataValidationError, load
    from tokenlib.errors import UnknownChoiceError

__all__ = sorted(_EXPORTS) + ["__version__"]

#: Old flat module -> its place in the layers (kept importable for code written before the move).
MOVED = {
    "tokenlib.datadoc": "tokenlib.book.datadoc", "tokenlib.fx": "tokenlib.data.fx",
    "tokenlib.places": "tokenlib.data.places", "tokenlib.specs": "tokenlib.data.specs",
    "tokenlib.kernel": "tokenlib.model.kernel", "tokenlib.cost": "tokenlib.model.cost",
    "tokenlib.calibrate": "tokenlib.model.calibrate", "tokenlib.fleet": "tokenlib.model.fleet",
    "tokenlib.prices": "tokenlib.analysis.prices", "tokenlib.controls": "tokenlib.analysis.export_controls",
    "tokenlib.subsidy": "tokenlib.analysis.subsidies", "tokenlib.geo": "tokenlib.analysis.geography",
    "tokenlib.crown": "tokenlib.analysis.crown", "tokenlib.capability": "tokenlib.analysis.capability",
    "tokenlib.token_budget": "tokenlib.analysis.token_budget", "tokenlib.charts": "tokenlib.book.charts",
    "tokenlib.figures": "tokenlib.book.figures", "tokenlib.tables": "tokenlib.book.tables",
    "tokenlib.sphinxext": "tokenlib.book.sphinxext", "tokenlib.findings": "tokenlib.book.findings",
    "tokenlib.run": "tokenlib.book.run", "tokenlib.lab": "tokenlib.book.lab",
}

#: Modules split in several (issue 21): the old name imports as one module holding every public name of
#: the new ones (with a :class:`DeprecationWarning`). ``crown`` held the city equation, its Monte Carlo,
#: the what-if, the voucher discount and the claims table.
SPLIT = {
    "tokenlib.analysis.crown": ("tokenlib.analysis.city_cost", "tokenlib.analysis.city_race",
                                "tokenlib.analysis.whatif", "tokenlib.book.claims"),
}
_SPLIT_EXTRA = {"tokenlib.analysis.crown": {"voucher_discount": "tokenlib.analysis.subsidies",
                                            "voucher_terms": "tokenlib.analysis.subsidies",
                                            "tornado_chart": "tokenlib.book.charts"}}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old flat module name to the module at its new place (the same module object)."""

    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED and fullname not in SPLIT:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name in SPLIT:
            return _split_module(spec.name)
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._own_specs[new] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ in SPLIT:
            return
        # The module is the one at the new place, already executed. The import system has just set its
        # __spec__ to the alias's spec; give it back its own, so reloads and ``-m`` see the real module.
        module.__spec__ = self._own_specs.get(module.__name__, module.__spec__)


def _split_module(name: str) -> types.ModuleType:
    """A module holding every public name of the modules ``name`` was split into (see :data:`SPLIT`)."""
    parts = SPLIT[name]
    warnings.warn(f"{name} was split into {', '.join(parts)}; import from those", DeprecationWarning, stacklevel=3)
    module = types.ModuleType(name, f"Deprecated: {name} was split into {', '.join(parts)}.")
    for part in parts:
        m = importlib.import_module(part)
        public = getattr(m, "__all__", [n for n in vars(m) if not n.startswith("_")])
        for attr in public:
            setattr(module, attr, getattr(m, attr))
    for attr, where in _SPLIT_EXTRA.get(name, {}).items():
        setattr(module, attr, getattr(importlib.import_module(where), attr))
    return module


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
