r"""Neuron2Graph: the graph service, token search over graphs, and predictions over user text.

Search follows DeepDecipher's grammar: ``type:token[,type:token...]`` with type ``activating``,
``important`` or ``any``; a term matches the union of its types, terms intersect. Tokens are
matched trimmed and lower-cased; a comma inside a token is written ``\,``. Results are ranked by
the strongest activation of a matched activating token (important-only matches rank after), then
by (layer, neuron).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import orjson
import polars as pl

from dd_api.query.errors import BadRequest, MissingData, Unavailable
from dd_api.query.metadata import missing_tables
from dd_api.query.refs import LayerRef, ModelRef, NeuronRef
from dd_api.query.schemas import (
    Baseline,
    Fidelity,
    GraphLayer,
    GraphLayerSummary,
    GraphModel,
    GraphNeuron,
    GraphNeuronFidelity,
    GraphSummary,
    Prediction,
    SimilarNeuron,
    TokenMatch,
    TokenSearch,
)
from dd_api.query.store import DataStore
from dd_api.query.terms import Term, parse_terms
from dd_api.query.values import num
from dd_assets.methods.n2g.tokens import search_key
from dd_assets.methods.n2g.trie import PredictionTrie
from dd_assets.tables import MODEL_TOKENIZER, N2G_GRAPHS, N2G_TOKEN_INDEX, NEURON_SIMILARITY

KINDS = ("activating", "important")
TYPES = ("any", *KINDS)
MAX_PREDICT_CHARS = 2000


# -- the graph service ------------------------------------------------------------------------


def _similar_index(store: DataStore, model: str) -> dict[tuple[int, int], list[SimilarNeuron]]:
    def build() -> dict[tuple[int, int], list[SimilarNeuron]]:
        df = store.frame(NEURON_SIMILARITY, model).sort(
            ["layer", "neuron", "similarity", "other_layer", "other_neuron"],
            descending=[False, False, True, False, False],
        )
        out: dict[tuple[int, int], list[SimilarNeuron]] = {}
        for layer, neuron, ol, on, sim in df.select(
            "layer", "neuron", "other_layer", "other_neuron", "similarity"
        ).iter_rows():
            out.setdefault((layer, neuron), []).append(
                SimilarNeuron(layer=ol, neuron=on, similarity=round(float(sim), 4))
            )
        return out

    return store.derived("n2g_similar", (NEURON_SIMILARITY,), model, build)


def _coverage_note(store: DataStore, ref: NeuronRef) -> str:
    covered = store.frame(N2G_GRAPHS, ref.model.name, ref.layer).height
    return (
        f"{covered} of {ref.model.layer_size} neurons of layer {ref.layer} have a graph; "
        "the most active neurons come first"
    )


def _graph_row(store: DataStore, ref: NeuronRef) -> dict:
    rows = store.neuron_rows(N2G_GRAPHS, ref.model.name, ref.layer, ref.neuron)
    if len(rows["neuron"]) == 0:
        raise MissingData(
            [N2G_GRAPHS.name],
            f"no Neuron2Graph graph for neuron {ref.neuron} of layer {ref.layer} "
            f"({_coverage_note(store, ref)})",
        )
    return {name: col[0] for name, col in rows.items()}


def neuron(store: DataStore, ref: NeuronRef) -> GraphNeuron:
    r = _graph_row(store, ref)
    return GraphNeuron(
        neuron_index=ref.index,
        # Stored as JSON text: passed through without decoding and re-encoding.
        graph=msgspec.Raw(str(r["graph"]).encode()),  # type: ignore[arg-type]
        graphviz=str(r["dot"]),
        svg=str(r["svg"]),
        similar=_similar_index(store, ref.model.name).get((ref.layer, ref.neuron), []),
        fidelity=Fidelity(
            precision=num(r["precision"]),
            recall=num(r["recall"]),
            f1=num(r["f1"]),
            test_tokens=int(r["test_tokens"]),
            firing_tokens=int(r["firing_tokens"]),
            baseline=Baseline(
                method="token lookup",
                precision=num(r["baseline_precision"]),
                recall=num(r["baseline_recall"]),
                f1=num(r["baseline_f1"]),
            ),
        ),
        augmenter=str(r["augmenter"]),
        base_max_activation=num(r["base_max_act"]),
        train_docs=r["train_docs"].tolist(),
        test_docs=r["test_docs"].tolist(),
        prompts=int(r["prompts"]),
        samples=int(r["samples"]),
        lines=int(r["lines"]),
        trie=msgspec.Raw(str(r["trie"]).encode()),  # type: ignore[arg-type]
    )


def _summary(df: pl.DataFrame, layer_size: int) -> dict:
    def mean(col: str) -> float | None:
        return num(df[col].drop_nulls().mean()) if df.height else None

    return {
        "num_neurons": layer_size,
        "num_graphs": df.height,
        "coverage": round(df.height / layer_size, 6) if layer_size else 0.0,
        "mean_precision": mean("precision"),
        "mean_recall": mean("recall"),
        "mean_f1": mean("f1"),
        "mean_baseline_precision": mean("baseline_precision"),
        "mean_baseline_recall": mean("baseline_recall"),
        "mean_baseline_f1": mean("baseline_f1"),
    }


def layer(store: DataStore, ref: LayerRef) -> GraphLayer:
    df = store.frame(N2G_GRAPHS, ref.model.name, ref.layer).sort(
        ["f1", "neuron"], descending=[True, False]
    )
    neurons = [
        GraphNeuronFidelity(
            neuron=n, precision=num(p), recall=num(r), f1=num(f), baseline_f1=num(b), augmenter=a
        )
        for n, p, r, f, b, a in df.select(
            "neuron", "precision", "recall", "f1", "baseline_f1", "augmenter"
        ).iter_rows()
    ]
    return GraphLayer(**_summary(df, ref.model.layer_size), neurons=neurons)


def model(store: DataStore, ref: ModelRef) -> GraphModel:
    size = ref.layer_size
    layers = sorted(store.layers_present(N2G_GRAPHS, ref.name))
    frames = [store.frame(N2G_GRAPHS, ref.name, la) for la in layers]
    per_layer = [
        GraphLayerSummary(layer=la, **_summary(df, size))
        for la, df in zip(layers, frames, strict=True)
    ]
    total = pl.concat(frames) if frames else pl.DataFrame(schema=N2G_GRAPHS.schema)
    overall = _summary(total, size * len(layers)) if layers else _summary(total, 0)
    return GraphModel(layers=per_layer, overall=GraphSummary(**overall))


# -- token search -----------------------------------------------------------------------------


GRAMMAR = "expected type:token[,type:token...] with type one of any, activating, important"


def parse_query(query: str | None) -> list[Term]:
    """``any:the,activating:cat`` -> terms; BadRequest with the grammar for anything else."""
    return parse_terms(query, KINDS, GRAMMAR, lambda t: search_key(t.replace("\\,", ",")))


@dataclass(frozen=True)
class TokenIndex:
    """token -> (flat neuron ids, activation) per kind; flat id = layer * layer_size + neuron."""

    layer_size: int
    postings: dict[str, dict[str, dict[int, float]]]


def token_index(store: DataStore, ref: ModelRef) -> TokenIndex:
    def build() -> TokenIndex:
        size = ref.layer_size
        df = store.frame(N2G_TOKEN_INDEX, ref.name)
        postings: dict[str, dict[str, dict[int, float]]] = {k: {} for k in KINDS}
        flat = (df["layer"].cast(pl.Int64) * size + df["neuron"]).to_list()
        for kind, token, fid, act in zip(
            df["kind"].to_list(),
            df["token"].to_list(),
            flat,
            df["activation"].to_list(),
            strict=True,
        ):
            postings[kind].setdefault(token, {})[fid] = act if act is not None else 0.0
        return TokenIndex(size, postings)

    return store.derived("n2g_token_index", (N2G_TOKEN_INDEX,), ref.name, build)


def search(
    store: DataStore, ref: ModelRef, query: str | None, limit: int = 100, offset: int = 0
) -> TokenSearch:
    """Neurons matching every term, strongest first; MissingData without a token index."""
    terms = parse_query(query)  # a malformed query is a 400 even before the index exists
    missing = missing_tables(store, (N2G_TOKEN_INDEX,), ref.name)
    if missing:
        raise MissingData(missing, f"no Neuron2Graph token index for model {ref.name!r} yet")
    index = token_index(store, ref)
    matched: dict[int, float] | None = None
    for term in terms:
        hits: dict[int, float] = {}
        for kind in term.kinds:
            for fid, act in index.postings[kind].get(term.token, {}).items():
                score = act if kind == "activating" else -1.0
                hits[fid] = max(hits.get(fid, -1.0), score)
        if matched is None:
            matched = hits
        else:
            matched = {f: max(matched[f], hits[f]) for f in matched.keys() & hits.keys()}
    ranked = sorted((matched or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    size = index.layer_size
    data = [
        TokenMatch(
            layer=fid // size,
            neuron=fid % size,
            activation=round(score, 4) if score >= 0 else None,
        )
        for fid, score in ranked[offset : offset + limit]
    ]
    canonical = ",".join(f"{'any' if len(t.kinds) == 2 else t.kinds[0]}:{t.token}" for t in terms)
    return TokenSearch(data=data, total=len(ranked), query=canonical)


# -- predictions over user text ---------------------------------------------------------------


@dataclass(frozen=True)
class TextEncoder:
    tokenizer: object  # tokenizers.Tokenizer
    vocabulary: list[str]
    bos_id: int

    def encode(self, text: str) -> list[int]:
        return [self.bos_id, *self.tokenizer.encode(text, add_special_tokens=False).ids]


def text_encoder(store: DataStore, model: str) -> TextEncoder:
    def build() -> TextEncoder:
        df = store.frame(MODEL_TOKENIZER, model)
        if df.height == 0 or not df["tokenizer_json"][0]:
            raise Unavailable(f"{model}: no tokenizer is stored, so text cannot be tokenized")
        from tokenizers import Tokenizer

        return TextEncoder(
            Tokenizer.from_str(df["tokenizer_json"][0]),
            df["vocabulary"][0].to_list(),
            int(df["bos_id"][0]),
        )

    return store.derived("n2g_encoder", (MODEL_TOKENIZER,), model, build)


def predict(store: DataStore, ref: NeuronRef, text: str | None) -> Prediction:
    """The graph's predicted activation for each token of `text` (tokenized like the model)."""
    if text is None or text == "":
        raise BadRequest("text is empty: pass ?text=... to predict over")
    if len(text) > MAX_PREDICT_CHARS:
        raise BadRequest(f"text is limited to {MAX_PREDICT_CHARS} characters, got {len(text)}")
    missing = missing_tables(store, (N2G_GRAPHS,), ref.model.name)
    if missing:
        raise MissingData(missing, f"no Neuron2Graph graphs for model {ref.model.name!r} yet")
    r = _graph_row(store, ref)
    spec = store.registry()[ref.model.name]
    trie = store.derived(
        f"n2g_trie:{ref.layer}:{ref.neuron}",
        (N2G_GRAPHS,),
        ref.model.name,
        lambda: PredictionTrie.from_json(orjson.loads(str(r["trie"])), spec.n2g.normalize_tokens),
    )
    encoder = text_encoder(store, ref.model.name)
    ids = encoder.encode(text)
    vocab = encoder.vocabulary
    tokens = [vocab[i] if i < len(vocab) else f"<{i}>" for i in ids]
    normalised = trie.predict(tokens, spec.n2g.predict_mode)[1:]  # BOS is context, not output
    base = float(r["base_max_act"])
    return Prediction(
        neuron_index=ref.index,
        tokens=tokens[1:],
        activations=np.round(normalised, 4),
        scaled_activations=np.round(normalised * base, 4),
        base_max_activation=num(base),
        mode=spec.n2g.predict_mode,
    )
