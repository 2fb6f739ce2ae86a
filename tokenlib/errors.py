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
    """
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
