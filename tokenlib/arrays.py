"""Type aliases for the array-or-scalar arguments the package's vectorised functions take (base layer).

Most functions broadcast: they take a number, a sequence or a NumPy array, and return a float for scalar
input and an array otherwise. The aliases say so in signatures instead of ``Any``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
"""A float64 array."""

ArrayLike = npt.ArrayLike
"""A number, a sequence of numbers or an array: what a broadcasting argument accepts."""

FloatOrArray = Union[float, FloatArray]
"""What a broadcasting function returns: a float for scalar input, else an array."""


def scalar_or_array(x: npt.ArrayLike) -> FloatOrArray:
    """``float(x)`` for a 0-d value, else ``x`` as a float array (the broadcasting functions' return rule)."""
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a


IdLike = Union[str, Sequence[str], npt.NDArray[np.str_], npt.NDArray[np.object_]]
"""One id (a chip, a model, a place) or several: what an id argument of a broadcasting function accepts."""
