"""The response envelopes, as named Structs: what OpenAPI documents for every service and level.

DeepDecipher wraps a service's data as ``{"data": ..., "metadata": ...}``; a service without data
there answers ``{"missing_data_types": [...], "detail": ..., "metadata": ...}`` (HTTP 200). The
envelope of each (service, level) is generated from the registry, so a new service gets its
component schemas (``<Service><Level>Response``) without code here.
"""

from __future__ import annotations

import operator
from functools import reduce

import msgspec
from msgspec import Struct

from dd_api.query.schemas import (
    ExplanationSearch,
    LiveActivations,
    Metadata,
    ModelTokenSearch,
    Prediction,
    TextSearch,
    TokenSearch,
)
from dd_api.query.services import LEVELS, SERVICES


class ErrorBody(Struct):
    status_code: int
    detail: str


class Missing(Struct):
    """The service has no data here yet (DeepDecipher's answer, HTTP 200)."""

    missing_data_types: list[str]
    """Tables without data for the model, layer or neuron."""
    detail: str
    """Why, in words."""
    metadata: Metadata


class ErrorEntry(Struct):
    """In ``all``: the service has no data at this level at all."""

    error: str


class ModelList(Struct):
    models: list[Metadata]


class TokenSearchResponse(TokenSearch):
    limit: int
    offset: int
    metadata: Metadata


class ModelTokenSearchResponse(ModelTokenSearch):
    limit: int
    offset: int
    metadata: Metadata


class ExplanationSearchResponse(ExplanationSearch):
    metadata: Metadata


class PredictionResponse(Struct):
    data: Prediction
    metadata: Metadata


class LiveActivationsResponse(Struct):
    data: LiveActivations
    metadata: Metadata


class TextSearchResponse(Struct):
    data: TextSearch
    limit: int
    offset: int
    metadata: Metadata


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _build() -> tuple[dict[tuple[str, str], type], dict[str, type], dict[str, object]]:
    envelopes: dict[tuple[str, str], type] = {}
    alls: dict[str, type] = {}
    for lvl in LEVELS:
        entries = []
        for name, svc in SERVICES.items():
            found = getattr(svc, lvl)
            if found is None:
                entries.append((name, ErrorEntry))
                continue
            title = f"{_pascal(name)}{lvl.capitalize()}"
            envelopes[name, lvl] = msgspec.defstruct(
                f"{title}Response", [("data", found.returns), ("metadata", Metadata | None)]
            )
            # One Struct with optional fields, not a union: OpenAPI generation (msgspec's
            # inspection) cannot take unions of untagged Structs inside a Struct.
            entry = msgspec.defstruct(
                f"{title}Entry",
                [
                    ("data", found.returns | None, None),
                    ("missing_data_types", list[str] | None, None),
                    ("detail", str | None, None),
                    ("error", str | None, None),
                ],
                omit_defaults=True,
            )
            entries.append((name, entry))
        alls[lvl] = msgspec.defstruct(f"All{lvl.capitalize()}Response", entries)
    routes = {
        lvl: reduce(
            operator.or_,
            [*(t for (_, lv), t in envelopes.items() if lv == lvl), Missing, alls[lvl]],
        )
        for lvl in LEVELS
    }
    return envelopes, alls, routes


ENVELOPES, ALL, BY_LEVEL = _build()
"""(service, level) -> envelope; level -> the ``all`` envelope; level -> what its route returns."""
