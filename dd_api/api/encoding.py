"""JSON encoding of the query layer's Structs: msgspec for the Structs, orjson for numpy.

Float arrays (per-token activations) stay numpy float32 all the way: orjson writes them in their
shortest float32 form ~2.4x faster than converting them to Python floats first, and a value
rounded to 6 decimals as float32 comes out as those 6 decimals.
"""

from __future__ import annotations

import msgspec
import numpy as np
import orjson

NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _numpy(value: object) -> msgspec.Raw:
    if isinstance(value, np.ndarray | np.generic):
        return msgspec.Raw(orjson.dumps(value, option=NUMPY))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_numpy)


def encode(value: object) -> bytes:
    return _ENCODER.encode(value)
