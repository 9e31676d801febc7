"""The registry of services behind ``/api/{model}/{service}[/{layer}[/{neuron}]]`` and the UI.

A service names the tables it reads and has one query function per level it serves; each returns
the Struct declared beside it (the OpenAPI component of that response). ``run`` is the one entry
point: it checks the level, reports tables without data as ``MissingData`` and calls the function.

Adding a service: write ``query/<service>.py`` (functions ``(store, ref) -> Struct``), declare its
Structs in ``query/schemas.py``, its tables in ``catalog.SERVICE_TABLES``, and register it below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from dd_api.query import bottom, coactivation, explainer, logits, n2g, neuroscope, stats
from dd_api.query.catalog import SERVICE_TABLES
from dd_api.query.errors import MissingData, NotFound, echo
from dd_api.query.metadata import missing_tables
from dd_api.query.refs import ModelRef, Ref, level
from dd_api.query.schemas import (
    BottomLayer,
    BottomNeuron,
    ExplainerLayer,
    ExplainerModel,
    ExplainerNeuron,
    GraphLayer,
    GraphModel,
    GraphNeuron,
    LogitNeuron,
    Metadata,
    NeuroscopeLayer,
    NeuroscopeModel,
    NeuroscopeNeuron,
    QuantileNeuron,
    SimilarNeurons,
    StatsLayer,
    StatsModel,
    StatsNeuron,
)
from dd_api.query.store import DataStore
from dd_assets.tables import TableSpec

LEVELS = ("model", "layer", "neuron")


@dataclass(frozen=True)
class Level:
    """One service at one level: its query function and the Struct it returns."""

    fn: Callable[..., Any]
    returns: type


@dataclass(frozen=True)
class Service:
    name: str
    description: str
    model: Level | None = None
    layer: Level | None = None
    neuron: Level | None = None
    paginated: bool = False
    """Model and layer levels take ``page=(limit, offset)`` (neuroscope's ranking)."""

    @property
    def tables(self) -> tuple[TableSpec, ...]:
        return SERVICE_TABLES[self.name]

    def at(self, level_name: str) -> Level:
        found = getattr(self, level_name)
        if found is None:
            raise NotFound(f"service {self.name!r} has no {level_name}-level data")
        return found

    def levels(self) -> dict[str, Level]:
        return {name: getattr(self, name) for name in LEVELS if getattr(self, name) is not None}


def _where(ref: Ref) -> str:
    if isinstance(ref, ModelRef):
        return f"model {ref.name!r}"
    return f"layer {ref.layer} of model {ref.model.name!r}"


def run(store: DataStore, service: Service, ref: Ref, page: tuple[int | None, int] | None = None):
    """The service's Struct at the level of `ref`.

    Raises NotFound for a level the service does not serve and MissingData when its tables hold
    no data for the model (or layer) yet, or none for this neuron.
    """
    lvl = level(ref)
    found = service.at(lvl)
    model = ref.name if isinstance(ref, ModelRef) else ref.model.name
    missing = missing_tables(store, service.tables, model, getattr(ref, "layer", None))
    if missing:
        raise MissingData(missing, f"{service.name} has no data for {_where(ref)} yet")
    if service.paginated and lvl != "neuron":
        return found.fn(store, ref, page)
    return found.fn(store, ref)


def _metadata(_store: DataStore, ref: Ref) -> Metadata:
    return ref.meta if isinstance(ref, ModelRef) else ref.model.meta


_META = Level(_metadata, Metadata)

SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(
            "metadata",
            "Model shape, dataset and available services.",
            model=_META,
            layer=_META,
            neuron=_META,
        ),
        Service(
            "neuroscope",
            "Max-activating dataset examples with per-token activations (Neuroscope).",
            model=Level(neuroscope.model, NeuroscopeModel),
            layer=Level(neuroscope.layer, NeuroscopeLayer),
            neuron=Level(neuroscope.neuron, NeuroscopeNeuron),
            paginated=True,
        ),
        Service(
            "quantile_examples",
            "Examples sampled from quantile bands of the neuron's document maxima.",
            neuron=Level(neuroscope.quantiles, QuantileNeuron),
        ),
        Service(
            "bottom_examples",
            "Most negative dataset examples with per-token activations (signed activations).",
            layer=Level(bottom.layer, BottomLayer),
            neuron=Level(bottom.neuron, BottomNeuron),
        ),
        Service(
            "similar_neurons",
            "The 10 most correlated neurons of any layer, with sign, on a seeded activation sample.",
            neuron=Level(coactivation.neuron, SimilarNeurons),
        ),
        Service(
            "activation_stats",
            "Activation statistics and histogram over the whole dataset.",
            model=Level(stats.model, StatsModel),
            layer=Level(stats.layer, StatsLayer),
            neuron=Level(stats.neuron, StatsNeuron),
        ),
        Service(
            "logit_effects",
            "Top and bottom output tokens of W_out[layer, neuron] @ W_U.",
            neuron=Level(logits.neuron, LogitNeuron),
        ),
        Service(
            "neuron2graph",
            "Neuron2Graph: token graph that predicts the neuron, its fidelity, similar neurons.",
            model=Level(n2g.model, GraphModel),
            layer=Level(n2g.layer, GraphLayer),
            neuron=Level(n2g.neuron, GraphNeuron),
        ),
        Service(
            "neuron_explainer",
            "Explanation of the neuron scored by simulation on held-out excerpts (LLM or offline).",
            model=Level(explainer.model, ExplainerModel),
            layer=Level(explainer.layer, ExplainerLayer),
            neuron=Level(explainer.neuron, ExplainerNeuron),
        ),
    )
}


def service(name: str) -> Service:
    """The registered service, or NotFound listing the names."""
    found = SERVICES.get(name)
    if found is None:
        raise NotFound(f"service {echo(name)} not found; services: {sorted(SERVICES)} and 'all'")
    return found


class Coverage(Struct, omit_defaults=True):
    """How many layers of a model one service has data for (the UI's model cards)."""

    name: str
    description: str
    layers: int
    num_layers: int
    state: str
    """``ok`` (every layer), ``partial`` or ``missing``."""
    neurons: int | None = None
    """For a service computed for some neurons of a layer only (Neuron2Graph): how many have
    data, so that "every layer" is not read as "every neuron"."""
    total_neurons: int | None = None


def _graphed_neurons(store: DataStore, ref: ModelRef) -> int:
    return n2g.model(store, ref).overall.num_graphs


PER_NEURON: dict[str, Callable[[DataStore, ModelRef], int]] = {"neuron2graph": _graphed_neurons}
"""Services whose coverage is stated in neurons as well as layers."""


def coverage(store: DataStore, ref: ModelRef) -> list[Coverage]:
    """Per service (metadata aside): how many layers have data."""
    out = []
    for name, svc in SERVICES.items():
        if name == "metadata":
            continue
        counts = [
            len(store.layers_present(t, ref.name))
            if t.per_layer
            else (ref.num_layers if store.has_model(t, ref.name) else 0)
            for t in svc.tables
        ]
        done = min(counts)
        state = "ok" if done == ref.num_layers else "partial" if done else "missing"
        cov = Coverage(name, svc.description, done, ref.num_layers, state)
        if name in PER_NEURON:
            cov.neurons = PER_NEURON[name](store, ref) if done else 0
            cov.total_neurons = ref.num_layers * ref.layer_size
        out.append(cov)
    return out
