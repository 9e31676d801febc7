"""The offline explainer: an explanation and a held-out score for every neuron, with no LLM.

The explanation is derived from the neuron's own data:

- its *explanation tokens*: on the explain excerpts (scaled 0-10 per neuron, methods.md §3.2),
  the tokens with the highest mean scaled activation (up to `max_tokens`, those within half of the
  best mean);
- a context: the tokens that most often come right before a strong activation (>= 5 of 10);
- the output tokens it promotes most (its top logit effects), when given;
- the activating and context tokens of its Neuron2Graph graph, where the neuron has one.

It reads, for example: ``tokens " def", " class" (often after "\\n"); promotes "(", ":"``.

The score uses the same held-out protocol as the LLM path (`protocol`: pooled, top-only and
random-only correlations), with a simulator that needs no LLM. By default that is the explanation's
own token list: a token of a score excerpt is predicted as the mean scaled activation its token had
on the explain split, other tokens as 0 (scorer ``token-lookup-v1``). When none of those tokens
occurs in the held-out excerpts that prediction is a constant and the correlation undefined; such
neurons are scored instead by the neuron's mean activation per token class on the explain split
(scorer ``token-class-mean-v1``, `token_classes`), and their `score_status` says so. A neuron
still without a score has a `score_status` saying why. A caller can inject a better simulator
per neuron (for example a Neuron2Graph trie) through `predictor_for`; those neurons name that
scorer instead.

The rows are of `kind` ``top-tokens``: a token list, not prose, so the UI and search can tell them
from language-model explanations (`kind` ``llm``).

Vectorised over all neurons of a layer; a SmolLM2 layer (1536 neurons) takes well under a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from dd_assets.methods.explain.protocol import (
    FALLBACK,
    NEVER_FIRES,
    NO_EXCERPTS,
    RANDOM_SOURCES,
    SCORED,
    ProtocolScores,
    protocol_scores,
)
from dd_assets.methods.explain.records import TOP, Excerpts, scaled_rows
from dd_assets.methods.explain.token_classes import class_mean_prediction, token_classes

KIND = "top-tokens"  # an offline token list, not prose (`kind` "llm" for language-model ones)
EXPLAINER = "offline-tokens-v1"
SCORER = "token-lookup-v1"
FALLBACK_SCORER = "token-class-mean-v1"
NEVER_OCCUR = "explanation tokens never occur in the held-out excerpts"
NEVER_OCCUR_FALLBACK = (
    "explanation tokens never occur in the held-out excerpts, and the token-class means "
    "are constant there too"
)
MODE = "offline"
VERSION = "offline-v1"
STRONG = 5  # scaled activation counted as a strong firing, for the context tokens

TokenPredictor = Callable[[list[str]], np.ndarray]
"""Token strings of one excerpt in, one predicted activation per token out (any scale)."""


def _quote(token: str) -> str:
    return json.dumps(token, ensure_ascii=False)


def _quoted_list(tokens: Sequence[str]) -> str:
    return ", ".join(_quote(t) for t in tokens)


def explanation_tokens(excerpts: Excerpts, max_tokens: int = 5) -> tuple[pl.DataFrame, np.ndarray]:
    """Per neuron, its explanation tokens and their mean scaled activation on the explain split.

    Returns (frame of neuron, token_id, value, count, sorted by neuron then value descending;
    max activation per neuron indexed by neuron).
    """
    ex = excerpts.take(excerpts.explain)
    n_neurons = int(excerpts.neuron.max(initial=-1)) + 1
    acts = np.maximum(ex.activations.astype(np.float64), 0)
    scale = np.zeros(n_neurons)
    np.maximum.at(scale, ex.neuron, acts.max(axis=1, initial=0.0))
    scaled = scaled_rows(acts, scale[ex.neuron])
    width = ex.width
    flat = pl.DataFrame(
        {
            "neuron": np.repeat(ex.neuron, width),
            "token_id": ex.token_ids.ravel(),
            "scaled": scaled.ravel(),
        }
    )
    stats = (
        flat.group_by("neuron", "token_id")
        .agg(pl.col("scaled").mean().alias("value"), pl.len().alias("count"))
        .filter(pl.col("value") > 0)
        .sort(["neuron", "value", "count", "token_id"], descending=[False, True, True, False])
        .with_columns(pl.col("value").max().over("neuron").alias("best"))
        .filter(pl.col("value") >= 0.5 * pl.col("best"))
        .group_by("neuron", maintain_order=True)
        .head(max_tokens)
        .drop("best")
    )
    return stats, scale


def context_tokens(excerpts: Excerpts, scale: np.ndarray, max_tokens: int = 2) -> pl.DataFrame:
    """Per neuron, the tokens seen most often (at least twice) right before a strong firing."""
    ex = excerpts.take(excerpts.explain)
    if ex.width < 2:
        return pl.DataFrame(schema={"neuron": pl.Int64, "token_id": pl.Int64, "count": pl.UInt32})
    per_row = scale[ex.neuron][:, None]
    strong = (per_row > 0) & (10 * np.maximum(ex.activations[:, 1:], 0) >= STRONG * per_row)
    rows, cols = np.nonzero(strong)
    prev = pl.DataFrame({"neuron": ex.neuron[rows], "token_id": ex.token_ids[rows, cols]})
    return (
        prev.group_by("neuron", "token_id")
        .agg(pl.len().alias("count"))
        .filter(pl.col("count") >= 2)
        .sort(["neuron", "count", "token_id"], descending=[False, True, False])
        .group_by("neuron", maintain_order=True)
        .head(max_tokens)
    )


def offline_explanations(
    excerpts: Excerpts,
    vocab: Sequence[str],
    neurons: Sequence[int],
    output_tokens: dict[int, list[str]] | None = None,
    predictor_for: Callable[[int], TokenPredictor | None] | None = None,
    predictor_name: str = "n2g",
    max_tokens: int = 5,
    graph_tokens: dict[int, tuple[list[str], list[str]]] | None = None,
) -> pl.DataFrame:
    """One explanation record per neuron in `neurons` (columns as the ``explanations`` table,
    without model and layer)."""
    neurons = np.asarray(neurons, dtype=np.int64)
    n_slots = int(max(neurons.max(initial=-1), excerpts.neuron.max(initial=-1))) + 1
    stats, scale = explanation_tokens(excerpts, max_tokens)
    scale = np.pad(scale, (0, n_slots - len(scale)))
    contexts = context_tokens(excerpts, scale)

    # Token-lookup simulation of every score excerpt: key (neuron, token) -> mean scaled value.
    vocab_size = max(len(vocab), int(excerpts.token_ids.max(initial=0)) + 1)
    keys = stats["neuron"].to_numpy() * vocab_size + stats["token_id"].to_numpy()
    values = stats["value"].to_numpy().astype(np.float64)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    sc = excerpts.take(~excerpts.explain)
    probe = sc.neuron[:, None] * vocab_size + sc.token_ids  # [row, pos]
    at = np.clip(np.searchsorted(keys, probe), 0, max(len(keys) - 1, 0))
    hit = keys[at] == probe if len(keys) else np.zeros(probe.shape, dtype=bool)
    predicted = np.where(hit, values[at] if len(keys) else 0.0, 0.0)  # [row, pos]
    scorer = np.full(n_slots, SCORER, dtype=object)
    if predictor_for is not None:
        for n in neurons.tolist():
            predict = predictor_for(n)
            if predict is None:
                continue
            for r in np.flatnonzero(sc.neuron == n):
                out = np.asarray(predict([vocab[t] for t in sc.token_ids[r]]), dtype=np.float64)
                if out.shape != (sc.width,):
                    raise ValueError(f"predictor for neuron {n} returned shape {out.shape}")
                predicted[r] = out
            scorer[n] = predictor_name
    width = sc.width
    token_neuron = np.repeat(sc.neuron, width)
    is_random = np.repeat(sc.kind != TOP, width)
    true = sc.activations.ravel()
    scores = protocol_scores(token_neuron, is_random, true, predicted.ravel(), n_slots, NEVER_OCCUR)
    # Where the token list never occurs in the held-out excerpts the lookup predicts a constant:
    # score those neurons with the better-defined token-class means instead, and say so.
    never_fires = scale <= 0
    fallback = scores.constant_prediction & (scorer == SCORER) & ~never_fires
    if fallback.any():
        class_pred = class_mean_prediction(excerpts, scale, token_classes(vocab, vocab_size))
        use = fallback[sc.neuron]
        predicted[use] = class_pred[use]
        again = protocol_scores(
            token_neuron, is_random, true, predicted.ravel(), n_slots, NEVER_OCCUR_FALLBACK
        )
        scores = ProtocolScores(
            *(
                np.where(fallback, getattr(again, f), getattr(scores, f))
                for f in ("pooled", "top", "random", "status", "constant_prediction")
            )
        )
        scorer[fallback] = FALLBACK_SCORER
        rescued = fallback & (scores.status == SCORED)
        scores.status[rescued] = f"{FALLBACK}: {NEVER_OCCUR}"
    scores.status[never_fires & ~np.isin(scores.status, [SCORED, NO_EXCERPTS])] = NEVER_FIRES
    random_kinds = _random_kinds(sc)

    token_lists: dict[int, list[str]] = {}
    for n, tokens in stats.group_by("neuron", maintain_order=True).agg("token_id").iter_rows():
        token_lists[n] = [vocab[t] for t in tokens]
    context_lists: dict[int, list[str]] = {}
    for n, tokens in contexts.group_by("neuron", maintain_order=True).agg("token_id").iter_rows():
        context_lists[n] = [vocab[t] for t in tokens]
    explain_docs = _doc_lists(excerpts, True)
    score_docs = _doc_lists(excerpts, False)

    texts, score_out = [], []
    ids = neurons.tolist()
    for n in ids:
        tokens = token_lists.get(n)
        if not tokens or scale[n] <= 0:
            text = "no positive activation on its top examples"
        else:
            text = f"tokens {_quoted_list(tokens)}"
            if context_lists.get(n):
                text += f" (often after {_quoted_list(context_lists[n])})"
        if output_tokens and output_tokens.get(n):
            text += f"; promotes {_quoted_list(output_tokens[n][:3])}"
        if graph_tokens and graph_tokens.get(n) and graph_tokens[n][0]:
            firing, context = graph_tokens[n]
            text += f"; its N2G graph fires on {_quoted_list(firing[:3])}"
            if context:
                text += f" given {_quoted_list(context[:3])}"
        texts.append(text)
        score_out.append(scores.value("pooled", n))
    return pl.DataFrame(
        {
            "neuron": neurons.astype(np.int32),
            "kind": KIND,
            "explanation": texts,
            "score": pl.Series(score_out, dtype=pl.Float64),
            "score_status": [str(scores.status[n]) for n in neurons.tolist()],
            "score_top": pl.Series([scores.value("top", n) for n in ids], dtype=pl.Float64),
            "score_random": pl.Series([scores.value("random", n) for n in ids], dtype=pl.Float64),
            "random_source": [random_kinds.get(n, "") for n in ids],
            "explainer": EXPLAINER,
            "scorer": [scorer[n] for n in neurons.tolist()],
            "simulator_mode": MODE,
            "prompt_version": VERSION,
            "status": "ok",
            "explain_doc_indices": [explain_docs.get(n, []) for n in neurons.tolist()],
            "score_doc_indices": [score_docs.get(n, []) for n in neurons.tolist()],
        },
        schema_overrides={
            "explain_doc_indices": pl.List(pl.Int64),
            "score_doc_indices": pl.List(pl.Int64),
        },
    )


def _random_kinds(score: Excerpts) -> dict[int, str]:
    """Per neuron, where the random half of its score set came from (`random_source`)."""
    sel = score.kind != TOP
    pairs = zip(score.neuron[sel].tolist(), score.kind[sel].tolist(), strict=True)
    return {n: RANDOM_SOURCES.get(k, k) for n, k in pairs}


def _doc_lists(excerpts: Excerpts, explain: bool) -> dict[int, list[int]]:
    sel = excerpts.explain == explain
    frame = pl.DataFrame({"neuron": excerpts.neuron[sel], "doc": excerpts.doc_index[sel]})
    grouped = frame.group_by("neuron", maintain_order=True).agg("doc")
    return dict(grouped.iter_rows())
