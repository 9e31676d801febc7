"""Neuron explanations and their simulation scores (DeepDecipher's ``neuron_explainer``)."""

from __future__ import annotations

import polars as pl

from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.rows import neuron_row
from dd_api.query.schemas import ExplainerLayer, ExplainerModel, ExplainerNeuron, ScorerSummary
from dd_api.query.store import DataStore
from dd_api.query.values import num
from dd_assets.methods.explain.summary import scorer_summaries
from dd_assets.tables import EXPLANATIONS


def neuron(store: DataStore, ref: NeuronRef) -> ExplainerNeuron:
    """DeepDecipher's {explanation, score} plus its kind, why it may have no score, the top-only
    and random-only scores, and where they came from."""
    r = neuron_row(store, EXPLANATIONS, ref)
    score, status = num(r["score"]), str(r["status"])
    return ExplainerNeuron(
        neuron_index=ref.index,
        kind=str(r["kind"]),
        explanation=str(r["explanation"]),
        score=score,
        score_status=str(r["score_status"]),
        score_reason=None if score is not None else str(r["score_status"]),
        score_top=num(r["score_top"]),
        score_random=num(r["score_random"]),
        random_source=str(r["random_source"]),
        explainer=str(r["explainer"]),
        scorer=str(r["scorer"]),
        simulator_mode=str(r["simulator_mode"]),
        prompt_version=str(r["prompt_version"]),
        status=status,
        explain_doc_indices=[int(d) for d in r["explain_doc_indices"]],
        score_doc_indices=[int(d) for d in r["score_doc_indices"]],
    )


def _summary(df: pl.DataFrame) -> dict:
    by_scorer = [ScorerSummary(**s) for s in scorer_summaries(df)]
    scored = df["score"].drop_nulls().len()
    only = by_scorer[0] if len(by_scorer) == 1 else None
    return {
        "num_neurons": df.height,
        "explained": int((df["status"] == "ok").sum()),
        "failed": int((df["status"] != "ok").sum()),
        "scored": scored,
        "mean_score": only.mean_score if only else None,
        "quartiles": (only.quartiles if only else None) or [None, None, None],
        "explainers": sorted(set(df["explainer"].to_list())),
        "by_scorer": by_scorer,
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
