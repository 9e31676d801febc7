"""How numbers leave the API: shared by every service so they all round and encode alike."""

from __future__ import annotations

import numpy as np

ROUND = 6


def floats(values) -> np.ndarray:
    """Float arrays go out as numpy float32: orjson writes their shortest repr, fast."""
    return np.asarray(values, dtype=np.float32)


def exact(values) -> list[float]:
    """float32 values as the Python floats of their shortest repr: encoded, they print exactly
    like the float32 arrays served beside them (and cost no numpy hook to encode)."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def num(value) -> float | None:
    """A scalar rounded to 6 decimals; None (JSON null) for missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if value != value else round(value, ROUND)  # NaN is the only x != x
