"""The services behind ``/api/{model}/{service}[/{layer}[/{neuron}]]``.

Each service names the tables it needs and builds its payload at the model, layer and neuron
level (a level it does not serve raises NotFound). Payload shapes follow DeepDecipher where it has
the service (metadata, neuroscope, neuron2graph, neuron_explainer) and are our own for the extras
(activation_stats, quantile_examples, logit_effects). A service whose tables hold no data for the
model or neuron is reported in ``missing_data_types``, as DeepDecipher does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from dd_api import n2g
from dd_api.errors import NotFound, Unavailable
from dd_api.store import ALL_TABLES, DataStore
from dd_api.values import ROUND
from dd_api.values import floats as _floats
from dd_api.values import num as _num
from dd_assets.tables import (
    ACTIVATION_SAMPLE_WINDOWS,
    DATASET_TOKENS,
    EXPLANATIONS,
    LOGIT_EFFECTS,
    MODEL_METADATA,
    N2G_GRAPHS,
    NEURON_COACTIVATION,
    NEURON_EXAMPLES,
    NEURON_STATS,
    TableSpec,
)


@dataclass(frozen=True)
class Service:
    name: str
    tables: tuple[TableSpec, ...]
    description: str
    model: Callable[[DataStore, str], object] | None = None
    layer: Callable[[DataStore, str, int], object] | None = None
    neuron: Callable[[DataStore, str, int, int], object] | None = None

    def level(self, level: str):
        fn = getattr(self, level)
        if fn is None:
            raise NotFound(f"service {self.name!r} has no {level}-level data")
        return fn


# -- metadata ---------------------------------------------------------------------------------


def metadata_object(store: DataStore, model: str) -> dict:
    """DeepDecipher's metadata object, cached until any table changes."""
    return store.derived("metadata", ALL_TABLES, model, lambda: _metadata(store, model))


def _metadata(store: DataStore, model: str) -> dict:
    row = store.metadata_row(model)
    if row is None:
        raise NotFound(f"model {model!r} is registered but has not been materialized yet")
    return {
        "name": model,
        "num_layers": row["num_layers"],
        "layer_size": row["layer_size"],
        "activation_function": row["activation_function"],
        "num_total_neurons": row["num_layers"] * row["layer_size"],
        "num_total_parameters": row["num_total_parameters"],
        "dataset": row["dataset"],
        "available_services": available_services(store, model),
        "hook": row["hook"],
        "loader": row["loader"],
        "context_length": row["context_length"],
        "num_documents": row["num_documents"],
        "num_tokens": row["num_tokens"],
        "top_k": row["top_k"],
    }


def available_services(store: DataStore, model: str) -> list[str]:
    return [s.name for s in SERVICES.values() if s.tables and missing_tables(store, s, model) == []]


def missing_tables(
    store: DataStore, service: Service, model: str, layer: int | None = None
) -> list[str]:
    """Names of the service's data types that have no data for this model (or layer)."""
    if not service.tables:
        return [service.name]
    missing = []
    for t in service.tables:
        if t.per_layer and layer is not None:
            present = layer in store.layers_present(t, model)
        else:
            present = store.has_model(t, model)
        if not present:
            missing.append(t.name)
    return missing


# -- neuroscope -------------------------------------------------------------------------------


def _select(rows: dict, mask) -> dict:
    return {name: col[mask] for name, col in rows.items()}


def _texts(store: DataStore, model: str, rows: dict) -> list[dict]:
    """DeepDecipher's text objects for some rows of neuron_examples."""
    docs = store.doc_tokens(model)
    activations = rows["activations"]  # float32 [rows, pos], stored rounded to 6 decimals
    # The extremes are stored as the rounded activations' own extremes: encode them the same way
    # (float32, shortest repr) so a text's max_activation is exactly its largest activation.
    maxima = list(_floats(rows["max_activation"]))
    minima = list(_floats(rows["min_activation"]))
    argmax = rows["max_activating_token_index"].tolist()
    texts = []
    for i, doc in enumerate(rows["doc_index"].tolist()):
        tokens, source = docs.get(doc, ([], ""))
        if len(tokens) != len(activations[i]):
            # The dataset was re-tokenized (new registry settings) and the examples are not
            # rewritten yet: never pair activations with the wrong tokens.
            raise Unavailable(f"{model}: examples are being recomputed for a new dataset; retry")
        texts.append(
            {
                "min_activation": minima[i],
                "max_activation": maxima[i],
                "data_index": doc,
                "max_activating_token_index": argmax[i],
                "tokens": tokens,
                "activations": activations[i],
                "source": source,
            }
        )
    return texts


def _with_ranges(texts: list[dict]) -> tuple[float | None, float | None]:
    if not texts:
        return None, None
    max_range = max(t["max_activation"] for t in texts)
    min_range = min(t["min_activation"] for t in texts)
    for t in texts:
        t["min_range"], t["max_range"] = min_range, max_range
    return min_range, max_range


def neuroscope_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    rows = store.neuron_rows(NEURON_EXAMPLES, model, layer, neuron)
    texts = _texts(store, model, _select(rows, rows["kind"] == "top"))
    min_range, max_range = _with_ranges(texts)
    return {
        "neuron_index": {"layer": layer, "neuron": neuron},
        "texts": texts,
        "min_range": min_range,
        "max_range": max_range,
    }


def _important(df: pl.DataFrame) -> list:
    return [
        [{"layer": layer, "neuron": neuron}, round(float(r), ROUND)]
        for layer, neuron, r in df.iter_rows()
    ]


def neuroscope_layer(store: DataStore, model: str, layer: int) -> dict:
    df = store.importance(model).filter(pl.col("layer") == layer)
    return {"num_neurons": df.height, "important_neurons": _important(df)}


def neuroscope_model(store: DataStore, model: str) -> dict:
    # Every neuron of the model (46k for SmolLM2): build the list once per table version.
    ranked = store.derived(
        "important_neurons", (NEURON_EXAMPLES,), model, lambda: _important(store.importance(model))
    )
    return {"important_neurons": ranked}


def quantile_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    rows = store.neuron_rows(NEURON_EXAMPLES, model, layer, neuron)
    rows = _select(rows, rows["kind"] == "quantile")
    bands = []
    for band in dict.fromkeys(rows["band"].tolist()):
        texts = _texts(store, model, _select(rows, rows["band"] == band))
        lo, hi = (float(x) for x in band.split("-"))
        bands.append({"band": band, "lower_quantile": lo, "upper_quantile": hi, "texts": texts})
    return {"neuron_index": {"layer": layer, "neuron": neuron}, "bands": bands}


# -- most negative examples ---------------------------------------------------------------------

NONNEGATIVE_NOTE = (
    "this model's activation (ReLU) is never negative, so it has no negative examples"
)


def _nonnegative(store: DataStore, model: str) -> bool:
    return bool(store.metadata_row(model).get("nonnegative") or False)


def bottom_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    """The neuron's most negative documents, most negative first, on one colour scale."""
    index = {"layer": layer, "neuron": neuron}
    if _nonnegative(store, model):
        return {"neuron_index": index, "nonnegative": True, "note": NONNEGATIVE_NOTE, "texts": []}
    rows = store.neuron_rows(NEURON_EXAMPLES, model, layer, neuron)
    texts = _texts(store, model, _select(rows, rows["kind"] == "bottom"))
    min_range, max_range = _with_ranges(texts)
    return {
        "neuron_index": index,
        "nonnegative": False,
        "texts": texts,
        "min_range": min_range,
        "max_range": max_range,
    }


def bottom_layer(store: DataStore, model: str, layer: int) -> dict:
    """Neurons ranked by their most negative activation over the dataset, most negative first."""
    if _nonnegative(store, model):
        return {"nonnegative": True, "note": NONNEGATIVE_NOTE, "negative_neurons": []}
    df = store.frame(NEURON_STATS, model, layer).sort(["min", "neuron"])
    return {
        "nonnegative": False,
        "num_neurons": df.height,
        "negative_neurons": [
            [{"layer": layer, "neuron": n}, v]
            for n, v in zip(df["neuron"].to_list(), _floats(df["min"]), strict=True)
            if v < 0
        ],
    }


# -- similar neurons by co-activation -----------------------------------------------------------


def similar_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    """The 10 neurons of any layer most (anti-)correlated with this one on the activation sample."""
    rows = store.neuron_rows(NEURON_COACTIVATION, model, layer, neuron)
    positions = store.frame(ACTIVATION_SAMPLE_WINDOWS, model)["length"].sum()
    similar = [
        {
            "layer": int(ol),
            "neuron": int(on),
            "correlation": c,
            "sign": "positive" if c >= 0 else "negative",
        }
        for ol, on, c in zip(
            rows["other_layer"].tolist(),
            rows["other_neuron"].tolist(),
            _floats(rows["correlation"]),
            strict=True,
        )
    ]
    out = {
        "neuron_index": {"layer": layer, "neuron": neuron},
        "method": str(rows["method"][0]) if similar else "pearson-activation-sample",
        "sample_positions": int(positions),
        "similar": similar,
    }
    if not similar:
        out["note"] = "the neuron is constant on the sample: its correlation is undefined"
    return out


# -- activation statistics --------------------------------------------------------------------


def _single(rows: dict, what: str, layer: int, neuron: int) -> dict:
    """The one row a per-neuron table holds for a neuron, as a dict of scalars/arrays."""
    if len(rows["neuron"]) == 0:
        raise NotFound(f"no {what} for neuron {neuron} of layer {layer}")
    return {name: col[0] for name, col in rows.items()}


def stats_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    r = _single(store.neuron_rows(NEURON_STATS, model, layer, neuron), "statistics", layer, neuron)
    return {
        "neuron_index": {"layer": layer, "neuron": neuron},
        "count": r["count"],
        "max": _num(r["max"]),
        "min": _num(r["min"]),
        "mean": _num(r["mean"]),
        "std": _num(r["std"]),
        "frac_positive": _num(r["frac_positive"]),
        "histogram": {
            "edges": _floats(r["hist_edges"]),
            "counts": r["hist_counts"].tolist(),
            # Counts cover a systematic sample of positions (every n-th); moments use all of them.
            "sampled_positions": int(r["hist_counts"].sum()),
        },
    }


def stats_layer(store: DataStore, model: str, layer: int) -> dict:
    df = store.frame(NEURON_STATS, model, layer)
    return {
        "num_neurons": df.height,
        "max": _floats(df["max"]),
        "min": _floats(df["min"]),
        "mean": _floats(df["mean"]),
        "frac_positive": _floats(df["frac_positive"]),
    }


def stats_model(store: DataStore, model: str) -> dict:
    layers = sorted(store.layers_present(NEURON_STATS, model))
    summary = []
    for layer in layers:
        df = store.frame(NEURON_STATS, model, layer)
        summary.append(
            {
                "layer": layer,
                "mean_max": _num(df["max"].mean()),
                "mean_frac_positive": _num(df["frac_positive"].mean()),
                "dead_neurons": int((df["max"] <= 0).sum()),
            }
        )
    return {"layers": summary}


# -- logit effects ----------------------------------------------------------------------------


def logit_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    r = _single(
        store.neuron_rows(LOGIT_EFFECTS, model, layer, neuron), "logit effects", layer, neuron
    )

    def tokens(prefix: str) -> list[dict]:
        return [
            {"token": t, "token_id": i, "value": v}
            for t, i, v in zip(
                r[f"{prefix}_tokens"],
                r[f"{prefix}_token_ids"],
                _floats(r[f"{prefix}_values"]),
                strict=True,
            )
        ]

    return {
        "neuron_index": {"layer": layer, "neuron": neuron},
        "top": tokens("top"),
        "bottom": tokens("bottom"),
    }


# -- neuron explainer ---------------------------------------------------------------------------


def explainer_neuron(store: DataStore, model: str, layer: int, neuron: int) -> dict:
    """DeepDecipher's {explanation, score} plus where they came from."""
    r = _single(store.neuron_rows(EXPLANATIONS, model, layer, neuron), "explanation", layer, neuron)
    return {
        "neuron_index": {"layer": layer, "neuron": neuron},
        "explanation": str(r["explanation"]),
        "score": _num(r["score"]),
        "explainer": str(r["explainer"]),
        "scorer": str(r["scorer"]),
        "simulator_mode": str(r["simulator_mode"]),
        "prompt_version": str(r["prompt_version"]),
        "status": str(r["status"]),
        "explain_doc_indices": [int(d) for d in r["explain_doc_indices"]],
        "score_doc_indices": [int(d) for d in r["score_doc_indices"]],
    }


def _score_summary(df: pl.DataFrame) -> dict:
    scores = df.filter(pl.col("status") == "ok")["score"].drop_nulls()
    quartiles = (
        [_num(scores.quantile(q, "linear")) for q in (0.25, 0.5, 0.75)]
        if scores.len()
        else [None, None, None]
    )
    return {
        "num_neurons": df.height,
        "explained": int((df["status"] == "ok").sum()),
        "failed": int((df["status"] != "ok").sum()),
        "scored": scores.len(),
        "mean_score": _num(scores.mean()) if scores.len() else None,
        "quartiles": quartiles,
        "explainers": sorted(set(df["explainer"].to_list())),
    }


def explainer_layer(store: DataStore, model: str, layer: int) -> dict:
    return {"layer": layer, **_score_summary(store.frame(EXPLANATIONS, model, layer))}


def explainer_model(store: DataStore, model: str) -> dict:
    def build() -> dict:
        df = store.frame(EXPLANATIONS, model)
        layers = sorted(set(df["layer"].to_list()))
        return {
            **_score_summary(df),
            "layers": [
                {"layer": layer, **_score_summary(df.filter(pl.col("layer") == layer))}
                for layer in layers
            ],
        }

    return store.derived("explainer_summary", (EXPLANATIONS,), model, build)


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(
            "metadata",
            (MODEL_METADATA,),
            "Model shape, dataset and available services.",
            model=lambda st, m: metadata_object(st, m),
            layer=lambda st, m, _layer: metadata_object(st, m),
            neuron=lambda st, m, _layer, _neuron: metadata_object(st, m),
        ),
        Service(
            "neuroscope",
            (NEURON_EXAMPLES, DATASET_TOKENS),
            "Max-activating dataset examples with per-token activations (Neuroscope).",
            model=neuroscope_model,
            layer=neuroscope_layer,
            neuron=neuroscope_neuron,
        ),
        Service(
            "quantile_examples",
            (NEURON_EXAMPLES, DATASET_TOKENS),
            "Examples sampled from quantile bands of the neuron's document maxima.",
            neuron=quantile_neuron,
        ),
        Service(
            "bottom_examples",
            # The windows table comes from the same scan as the bottom examples: a model scanned
            # before they existed lacks it and reports missing data until it is rescanned.
            (NEURON_EXAMPLES, DATASET_TOKENS, NEURON_STATS, ACTIVATION_SAMPLE_WINDOWS),
            "Most negative dataset examples with per-token activations (signed activations).",
            layer=bottom_layer,
            neuron=bottom_neuron,
        ),
        Service(
            "similar_neurons",
            (NEURON_COACTIVATION, ACTIVATION_SAMPLE_WINDOWS),
            "The 10 most correlated neurons of any layer, with sign, on a seeded activation sample.",
            neuron=similar_neuron,
        ),
        Service(
            "activation_stats",
            (NEURON_STATS,),
            "Activation statistics and histogram over the whole dataset.",
            model=stats_model,
            layer=stats_layer,
            neuron=stats_neuron,
        ),
        Service(
            "logit_effects",
            (LOGIT_EFFECTS,),
            "Top and bottom output tokens of W_out[layer, neuron] @ W_U.",
            neuron=logit_neuron,
        ),
        Service(
            "neuron2graph",
            (N2G_GRAPHS,),
            "Neuron2Graph: token graph that predicts the neuron, its fidelity, similar neurons.",
            model=n2g.graph_model,
            layer=n2g.graph_layer,
            neuron=n2g.graph_neuron,
        ),
        Service(
            "neuron_explainer",
            (EXPLANATIONS,),
            "Explanation of the neuron scored by simulation on held-out excerpts (LLM or offline).",
            model=explainer_model,
            layer=explainer_layer,
            neuron=explainer_neuron,
        ),
    )
}
