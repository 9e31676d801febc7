"""Neuron explanations and their simulation scores (DeepDecipher's ``neuron_explainer``)."""

from __future__ import annotations

import polars as pl

from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.rows import neuron_row
from dd_api.query.schemas import ExplainerLayer, ExplainerModel, ExplainerNeuron
from dd_api.query.store import DataStore
from dd_api.query.values import num
from dd_assets.tables import EXPLANATIONS

UNDEFINED = (
    "undefined: the simulated or the true activations are constant over the scored tokens, "
    "so their correlation has no value"
)


def score_reason(score: float | None, status: str) -> str | None:
    """Why a neuron has no score (None when it has one)."""
    if score is not None:
        return None
    if status != "ok":
        return f"not scored: the explanation {status}"
    return UNDEFINED


def neuron(store: DataStore, ref: NeuronRef) -> ExplainerNeuron:
    """DeepDecipher's {explanation, score} plus where they came from."""
    r = neuron_row(store, EXPLANATIONS, ref)
    score, status = num(r["score"]), str(r["status"])
    return ExplainerNeuron(
        neuron_index=ref.index,
        explanation=str(r["explanation"]),
        score=score,
        score_reason=score_reason(score, status),
        explainer=str(r["explainer"]),
        scorer=str(r["scorer"]),
        simulator_mode=str(r["simulator_mode"]),
        prompt_version=str(r["prompt_version"]),
        status=status,
        explain_doc_indices=[int(d) for d in r["explain_doc_indices"]],
        score_doc_indices=[int(d) for d in r["score_doc_indices"]],
    )


def _summary(df: pl.DataFrame) -> dict:
    scores = df.filter(pl.col("status") == "ok")["score"].drop_nulls()
    quartiles = (
        [num(scores.quantile(q, "linear")) for q in (0.25, 0.5, 0.75)]
        if scores.len()
        else [None, None, None]
    )
    return {
        "num_neurons": df.height,
        "explained": int((df["status"] == "ok").sum()),
        "failed": int((df["status"] != "ok").sum()),
        "scored": scores.len(),
        "mean_score": num(scores.mean()) if scores.len() else None,
        "quartiles": quartiles,
        "explainers": sorted(set(df["explainer"].to_list())),
    }


def layer(store: DataStore, ref: LayerRef) -> ExplainerLayer:
    return ExplainerLayer(
        layer=ref.layer, **_summary(store.frame(EXPLANATIONS, ref.model.name, ref.layer))
    )


def model(store: DataStore, ref: ModelRef) -> ExplainerModel:
    def build() -> ExplainerModel:
        df = store.frame(EXPLANATIONS, ref.name)
        layers = sorted(set(df["layer"].to_list()))
        return ExplainerModel(
            **_summary(df),
            layers=[
                ExplainerLayer(layer=la, **_summary(df.filter(pl.col("layer") == la)))
                for la in layers
            ],
        )

    return store.derived("explainer_summary", (EXPLANATIONS,), ref.name, build)
