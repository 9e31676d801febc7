"""Neuron explanations and their simulation scores (DeepDecipher's ``neuron_explainer``)."""

from __future__ import annotations

import polars as pl

from dd_api.query.errors import MissingData
from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.rows import neuron_row
from dd_api.query.schemas import (
    EmbeddingScore,
    ExplainerLayer,
    ExplainerModel,
    ExplainerNeuron,
    ScorerSummary,
)
from dd_api.query.store import DataStore
from dd_api.query.values import num
from dd_assets.methods.explain.summary import scorer_summaries
from dd_assets.tables import EMBEDDING_SCORES, EXPLANATIONS


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
        embedding_score=_embedding_score(store, ref),
    )


def _embedding_score(store: DataStore, ref: NeuronRef) -> EmbeddingScore | None:
    """The neuron's embedding AUROC, or None where the model has no embedding scores."""
    try:
        r = neuron_row(store, EMBEDDING_SCORES, ref)
    except MissingData:
        return None
    return EmbeddingScore(
        scorer=str(r["scorer"]),
        encoder=str(r["encoder"]),
        score=num(r["score"]),
        score_status=str(r["score_status"]),
        positives=int(r["positives"]),
        negatives=int(r["negatives"]),
        negative_source=str(r["negative_source"]),
        mean_cosine_positive=num(r["mean_cosine_positive"]),
        mean_cosine_negative=num(r["mean_cosine_negative"]),
        positive_doc_indices=[int(d) for d in r["positive_doc_indices"]],
    )


def _summary(df: pl.DataFrame, embedding: pl.DataFrame) -> dict:
    """`df`: explanations rows; `embedding`: the same neurons' embedding_scores rows."""
    by_scorer = [ScorerSummary(**s) for s in scorer_summaries(df)]
    # Each embedding score is summarised per kind of the explanation it scores: an LLM's sentence
    # and a top-tokens list are different methods, never pooled.
    kinds = embedding.join(df.select("layer", "neuron", "kind"), on=["layer", "neuron"], how="left")
    kinds = kinds.with_columns(pl.col("kind").fill_null("none"))
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
        "by_embedding_scorer": [
            ScorerSummary(**s) for s in scorer_summaries(kinds, by=("scorer", "kind"))
        ],
    }


def layer(store: DataStore, ref: LayerRef) -> ExplainerLayer:
    name = ref.model.name
    return ExplainerLayer(
        layer=ref.layer,
        **_summary(
            store.frame(EXPLANATIONS, name, ref.layer),
            store.frame(EMBEDDING_SCORES, name, ref.layer),
        ),
    )


def model(store: DataStore, ref: ModelRef) -> ExplainerModel:
    def build() -> ExplainerModel:
        df = store.frame(EXPLANATIONS, ref.name)
        emb = store.frame(EMBEDDING_SCORES, ref.name)
        layers = sorted(set(df["layer"].to_list()))
        return ExplainerModel(
            **_summary(df, emb),
            layers=[
                ExplainerLayer(
                    layer=la,
                    **_summary(df.filter(pl.col("layer") == la), emb.filter(pl.col("layer") == la)),
                )
                for la in layers
            ],
        )

    tables = (EXPLANATIONS, EMBEDDING_SCORES)
    return store.derived("explainer_summary", tables, ref.name, build)
