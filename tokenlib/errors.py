"""Errors and input checks shared by every tokenlib module.

Bad input must fail loudly and say what would have been accepted, so a reader who mistypes a chip or
a city learns the valid ids instead of getting a silent number.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import numpy as np


class UnknownChoiceError(KeyError, ValueError):
    """An id (chip, model, place, phase, table...) that is not among the valid choices."""

    def __init__(self, what: str, value: object, choices: Iterable[str]) -> None:
        self.what = what
        self.value = value
        self.choices = sorted(str(c) for c in choices)
        close = difflib.get_close_matches(str(value), self.choices, n=1, cutoff=0.0)
        self.suggestion = close[0] if close else None
        hint = f" Did you mean {self.suggestion!r}?" if self.suggestion else ""
        message = (
            f"unknown {what} {value!r}.{hint} Valid {what} ids: {', '.join(self.choices)}"
        )
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return self.message


def check_choice(what: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` as a string if it is one of ``choices``, else raise :class:`UnknownChoiceError`."""
    valid = list(choices)
    if not isinstance(value, str) or value not in valid:
        raise UnknownChoiceError(what, value, valid)
    return value


def check_number(
    name: str,
    value: Any,
    *,
    allow_zero: bool = True,
    upper: float | None = None,
) -> np.ndarray:
    """Validate a scalar or array parameter: finite, non-negative (positive if ``allow_zero`` is false).

    Returns the value as a float ndarray (0-d for scalars). Raises ``ValueError`` naming the parameter.
    Booleans are refused (``True`` is not a number of chips).
    """
    if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool:
        raise ValueError(f"{name} must be a number, not a boolean: got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (got NaN or infinity): {value!r}")
    if allow_zero:
        if np.any(arr < 0):
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    elif np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if upper is not None and np.any(arr > upper):
        raise ValueError(f"{name} must be <= {upper}, got {value!r}")
    return arr


class MissingSpecError(ValueError):
    """A figure the kernel needs is empty in the data (e.g. a chip with no published HBM bandwidth).

    Names the table, the id(s) and the field, so the reader knows which cell of which CSV to source.
    """

    def __init__(self, what: str, ids: Iterable[str], field: str, table: str, hint: str = "") -> None:
        self.what = what
        self.ids = sorted({str(i) for i in ids})
        self.field = field
        self.table = table
        shown = ", ".join(repr(i) for i in self.ids)
        message = (f"{what} {shown} has no {field} in data/{table}.csv, and the kernel needs it here; "
                   f"source the figure or choose another {what}.{(' ' + hint) if hint else ''}")
        super().__init__(message)


def _refuse_bool(name: str, value: Any) -> None:
    arr = np.asarray(value)
    if arr.dtype == bool or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, not a boolean: got {value!r}")


def check_count(name: str, value: Any) -> np.ndarray:
    """A whole, positive count (chips, sequences): 1, 2, 3... as a float ndarray; booleans refused."""
    _refuse_bool(name, value)
    arr = check_number(name, value, allow_zero=False)
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must be a whole number (a count), got {value!r}")
    return arr


def check_fraction(name: str, value: Any, *, closed_low: bool = False, closed_high: bool = True) -> np.ndarray:
    """A share in (0, 1] by default; ``closed_low`` allows 0, ``closed_high=False`` excludes 1."""
    _refuse_bool(name, value)
    arr = check_number(name, value, allow_zero=closed_low)
    if np.any(arr > 1) or (not closed_high and np.any(arr >= 1)):
        interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return arr


def check_at_least(name: str, value: Any, lower: float) -> np.ndarray:
    """A finite number >= ``lower`` (e.g. PUE >= 1)."""
    _refuse_bool(name, value)
    arr = check_number(name, value)
    if np.any(arr < lower):
        raise ValueError(f"{name} must be >= {lower:g}, got {value!r}")
    return arr


def check_flag(name: str, value: Any) -> bool:
    """A real boolean (True/False); 0, 1, 'yes' and the like are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_shapes(**arrays: Any) -> tuple[int, ...]:
    """The common broadcast shape of the named arguments, or an error naming the ones that clash."""
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        shown = ", ".join(f"{k} {s}" for k, s in shapes.items() if s != ())
        raise ValueError(f"arguments have shapes that do not broadcast together: {shown}") from None
