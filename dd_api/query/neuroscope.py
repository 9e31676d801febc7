"""Neuroscope: a neuron's max-activating documents, quantile-band examples, and the neurons of a
layer or model ranked by the activation range of their top document (DeepDecipher's ranking)."""

from __future__ import annotations

import numpy as np
import polars as pl

from dd_api.query.errors import Unavailable
from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.schemas import (
    NeuronIndex,
    NeuroscopeLayer,
    NeuroscopeModel,
    NeuroscopeNeuron,
    QuantileBand,
    QuantileNeuron,
    Text,
)
from dd_api.query.store import DataStore
from dd_api.query.values import ROUND, exact
from dd_assets.tables import DATASET_TOKENS, NEURON_EXAMPLES

Ranking = list[tuple[NeuronIndex, float]]
TEXT_COLUMNS = (
    "activations", "max_activation", "min_activation", "max_activating_token_index", "doc_index"
)  # fmt: skip


def doc_tokens(store: DataStore, model: str) -> dict[int, tuple[list[str], str]]:
    """doc_index -> (token strings, source) of the model's dataset."""

    def build() -> dict[int, tuple[list[str], str]]:
        df = store.frame(DATASET_TOKENS, model)
        return {
            d: (t, s)
            for d, t, s in zip(df["doc_index"], df["tokens"].to_list(), df["source"], strict=True)
        }

    return store.derived("doc_tokens", (DATASET_TOKENS,), model, build)


def texts_of(
    store: DataStore, model: str, rows: dict, which: np.ndarray, shared_range: bool
) -> list[Text]:
    """DeepDecipher's text objects for rows `which` of a neuron's neuron_examples; with
    `shared_range`, each carries the extremes over all of them (one colour scale)."""
    rows = {name: rows[name][which] for name in TEXT_COLUMNS}
    docs = doc_tokens(store, model)
    activations = rows["activations"]  # float32 [rows, pos], stored rounded to 6 decimals
    # The extremes are stored as the rounded activations' own extremes: encode them the same way
    # (float32's shortest repr) so a text's max_activation is exactly its largest activation.
    maxima = exact(rows["max_activation"])
    minima = exact(rows["min_activation"])
    argmax = rows["max_activating_token_index"].tolist()
    max_range = max(maxima) if maxima and shared_range else None
    min_range = min(minima) if minima and shared_range else None
    texts = []
    for i, doc in enumerate(rows["doc_index"].tolist()):
        tokens, source = docs.get(doc, ([], ""))
        if len(tokens) != len(activations[i]):
            # The dataset was re-tokenized (new registry settings) and the examples are not
            # rewritten yet: never pair activations with the wrong tokens.
            raise Unavailable(f"{model}: examples are being recomputed for a new dataset; retry")
        texts.append(
            Text(
                min_activation=minima[i],
                max_activation=maxima[i],
                data_index=doc,
                max_activating_token_index=argmax[i],
                tokens=tokens,
                activations=activations[i],
                source=source,
                min_range=min_range,
                max_range=max_range,
            )
        )
    return texts


def neuron(store: DataStore, ref: NeuronRef) -> NeuroscopeNeuron:
    rows = store.neuron_rows(NEURON_EXAMPLES, ref.model.name, ref.layer, ref.neuron)
    top = [i for i, kind in enumerate(rows["kind"].tolist()) if kind == "top"]
    texts = texts_of(store, ref.model.name, rows, np.asarray(top, dtype=np.intp), True)
    first = texts[0] if texts else None
    return NeuroscopeNeuron(
        neuron_index=ref.index,
        texts=texts,
        min_range=first.min_range if first else None,
        max_range=first.max_range if first else None,
    )


def quantiles(store: DataStore, ref: NeuronRef) -> QuantileNeuron:
    rows = store.neuron_rows(NEURON_EXAMPLES, ref.model.name, ref.layer, ref.neuron)
    members: dict[str, list[int]] = {}  # band -> its rows, bands in order of appearance
    for i, (kind, band) in enumerate(
        zip(rows["kind"].tolist(), rows["band"].tolist(), strict=True)
    ):
        if kind == "quantile":
            members.setdefault(band, []).append(i)
    bands = []
    for band, which in members.items():
        texts = texts_of(store, ref.model.name, rows, np.asarray(which, dtype=np.intp), False)
        lo, hi = (float(x) for x in band.split("-"))
        bands.append(QuantileBand(band=band, lower_quantile=lo, upper_quantile=hi, texts=texts))
    return QuantileNeuron(neuron_index=ref.index, bands=bands)


def importance(store: DataStore, model: str) -> pl.DataFrame:
    """(layer, neuron, range) of each neuron's top text, widest range first."""

    def build() -> pl.DataFrame:
        return store.scan(
            NEURON_EXAMPLES,
            model,
            lambda lf: lf.filter((pl.col("kind") == "top") & (pl.col("rank") == 0)).select(
                "layer",
                "neuron",
                (pl.col("max_activation") - pl.col("min_activation")).alias("range"),
            ),
        ).sort(["range", "layer", "neuron"], descending=[True, False, False])

    return store.derived("importance", (NEURON_EXAMPLES,), model, build)


def _ranking(df: pl.DataFrame) -> Ranking:
    return [(NeuronIndex(la, n), round(float(r), ROUND)) for la, n, r in df.iter_rows()]


Page = tuple[int | None, int]
"""(limit, offset) of a ranking; None: the whole ranking, without ``total``."""


def _page(ranked: list, page: Page | None) -> tuple[list, int | None]:
    if page is None:
        return ranked, None
    limit, offset = page
    return ranked[offset : None if limit is None else offset + limit], len(ranked)


def layer(store: DataStore, ref: LayerRef, page: Page | None = None) -> NeuroscopeLayer:
    df = importance(store, ref.model.name).filter(pl.col("layer") == ref.layer)
    ranked, total = _page(_ranking(df), page)
    return NeuroscopeLayer(num_neurons=df.height, important_neurons=ranked, total=total)


def model(store: DataStore, ref: ModelRef, page: Page | None = None) -> NeuroscopeModel:
    # Every neuron of the model (46k for SmolLM2): build the list once per table version.
    ranked = store.derived(
        "important_neurons",
        (NEURON_EXAMPLES,),
        ref.name,
        lambda: _ranking(importance(store, ref.name)),
    )
    ranked, total = _page(ranked, page)
    return NeuroscopeModel(important_neurons=ranked, total=total)


def layer_tops(store: DataStore, ref: ModelRef, k: int) -> dict[int, list[tuple[int, float]]]:
    """Each layer's k widest-range neurons: layer -> [(neuron, range)]."""

    def build() -> dict[int, list[tuple[int, float]]]:
        tops = importance(store, ref.name).group_by("layer", maintain_order=True).head(k)
        out: dict[int, list[tuple[int, float]]] = {}
        for la, n, r in tops.iter_rows():
            out.setdefault(int(la), []).append((int(n), float(r)))
        return out

    return store.derived(f"layer_tops:{k}", (NEURON_EXAMPLES,), ref.name, build)
