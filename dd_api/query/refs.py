"""References to a model, a layer or a neuron, validated once into typed values.

Every query function takes one of these, so an index is parsed and bounds-checked in one place
(400 when malformed, 404 when out of range or unknown) and never travels as a string again. The
model's shape comes from one source: its stored metadata.
"""

from __future__ import annotations

from msgspec import Struct

from dd_api.query.errors import BadRequest, NotFound, echo
from dd_api.query.metadata import metadata
from dd_api.query.schemas import Metadata, NeuronIndex
from dd_api.query.store import DataStore

MAX_INDEX_DIGITS = 12


class ModelRef(Struct, frozen=True):
    name: str
    meta: Metadata

    @property
    def num_layers(self) -> int:
        return self.meta.num_layers

    @property
    def layer_size(self) -> int:
        return self.meta.layer_size


class LayerRef(Struct, frozen=True):
    model: ModelRef
    layer: int


class NeuronRef(Struct, frozen=True):
    model: ModelRef
    layer: int
    neuron: int

    @property
    def index(self) -> NeuronIndex:
        return NeuronIndex(self.layer, self.neuron)


Ref = ModelRef | LayerRef | NeuronRef


def parse_index(what: str, raw: str | int, bound: int, context: str) -> int:
    """A layer or neuron index from a path segment or an int: 400 if malformed, 404 if too big."""
    if isinstance(raw, int):
        text = str(raw)
    else:
        text = raw
        if not text.isascii() or not text.isdigit():
            raise BadRequest(f"{what} must be a non-negative integer, got {echo(raw)}")
    if text.startswith("-") or len(text) > MAX_INDEX_DIGITS or int(text) >= bound:
        raise NotFound(f"{what} {echo(raw)} is out of range: {context} has {bound} {what}s")
    return int(text)


def model_ref(store: DataStore, name: str) -> ModelRef:
    """A served model: registered and materialized (404 otherwise)."""
    if store.registry().get(name) is None:
        raise NotFound(f"model {echo(name)} not found; GET /api lists the served models")
    return ModelRef(name, metadata(store, name))


def layer_ref(store: DataStore, model: str | ModelRef, layer: str | int) -> LayerRef:
    ref = model if isinstance(model, ModelRef) else model_ref(store, model)
    return LayerRef(ref, parse_index("layer", layer, ref.num_layers, f"model {ref.name!r}"))


def neuron_ref(
    store: DataStore, model: str | ModelRef, layer: str | int, neuron: str | int
) -> NeuronRef:
    lref = layer_ref(store, model, layer)
    index = parse_index("neuron", neuron, lref.model.layer_size, f"layer {lref.layer}")
    return NeuronRef(lref.model, lref.layer, index)


def resolve(
    store: DataStore, model: str, layer: str | int | None = None, neuron: str | int | None = None
) -> Ref:
    """The reference at the level given by which of `layer` and `neuron` are set."""
    if layer is None:
        return model_ref(store, model)
    if neuron is None:
        return layer_ref(store, model, layer)
    return neuron_ref(store, model, layer, neuron)


def level(ref: Ref) -> str:
    return (
        "model" if isinstance(ref, ModelRef) else "layer" if isinstance(ref, LayerRef) else "neuron"
    )
