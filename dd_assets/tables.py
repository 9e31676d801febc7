"""Every Delta table deepdecipher writes, declared once: name, schema, partitioning and sort order.

The pipeline's IO manager validates frames against these schemas before writing, the API reads them
to know where a neuron's rows live, and the tests build fixtures from them. Partition columns are
``model`` (and ``layer`` for per-layer tables), never ``neuron``: a neuron is found inside its layer
partition by sorting on ``neuron`` and searching, which keeps files few and lookups fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

F32 = pl.Float32
I32 = pl.Int32
I64 = pl.Int64
STR = pl.String


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pl.Schema
    partition_by: tuple[str, ...]
    sort_by: tuple[str, ...]
    description: str

    @property
    def per_layer(self) -> bool:
        return "layer" in self.partition_by

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """Return `df` with exactly this schema's columns, in order, sorted for point lookups.

        Raises ValueError on a missing column or a dtype that differs: Delta would cast some of
        those silently (a numeric string into an int), so we refuse them here instead.
        """
        missing = [c for c in self.schema.names() if c not in df.columns]
        if missing:
            raise ValueError(f"table {self.name}: missing columns {missing}")
        wrong = {
            c: (str(df.schema[c]), str(t)) for c, t in self.schema.items() if df.schema[c] != t
        }
        if wrong:
            raise ValueError(f"table {self.name}: dtype mismatch (got, want) {wrong}")
        return df.select(self.schema.names()).sort(list(self.sort_by))


def _schema(**cols: pl.DataType) -> pl.Schema:
    return pl.Schema(cols)


DATASET_TOKENS = TableSpec(
    name="dataset_tokens",
    schema=_schema(
        model=STR,
        doc_index=I64,  # row of the model's dataset; what DeepDecipher calls data_index
        source=STR,  # where the text came from, e.g. "pydoc:assert" or "code:json/decoder.py"
        token_ids=pl.List(I32),  # BOS first, exactly context_length ids
        tokens=pl.List(STR),  # the same tokens as strings, for display
    ),
    partition_by=("model",),
    sort_by=("model", "doc_index"),
    description="The tokenized dataset each model is scanned over (per model: its own tokenizer).",
)

NEURON_EXAMPLE_CHOICES = TableSpec(
    name="neuron_example_choices",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        kind=STR,  # "top" (max-activating), "bottom" (most negative) or "quantile" (band sample)
        rank=I32,  # order within the kind: 0 = strongest top/bottom example / first quantile sample
        band=STR,  # quantile band of the document max, e.g. "0.90-0.99"; "" for top/bottom
        doc_index=I64,
        doc_max=F32,  # ranking value, BOS excluded: document max (top, quantile) or min (bottom)
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron", "kind", "rank"),
    description="Which documents to show per neuron, chosen by the streaming activation scan.",
)

NEURON_EXAMPLES = TableSpec(
    name="neuron_examples",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        kind=STR,
        rank=I32,
        band=STR,
        doc_index=I64,
        activations=pl.List(F32),  # per-token activation, one per token of the document
        max_activation=F32,  # over the document, BOS excluded
        min_activation=F32,  # over the document, BOS excluded
        max_activating_token_index=I32,
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron", "kind", "rank"),
    description="Neuroscope data: per-token activations of each neuron's chosen documents.",
)

NEURON_STATS = TableSpec(
    name="neuron_stats",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        count=I64,  # token positions seen (BOS excluded)
        max=F32,
        min=F32,
        mean=pl.Float64,
        std=pl.Float64,
        frac_positive=pl.Float64,  # fraction of positions with activation > 0
        hist_edges=pl.List(F32),  # len(hist_counts) + 1 edges, linear between min and max
        hist_counts=pl.List(I64),
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="Activation statistics of every neuron over the whole dataset.",
)

LOGIT_EFFECTS = TableSpec(
    name="logit_effects",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        top_token_ids=pl.List(I32),
        top_tokens=pl.List(STR),
        top_values=pl.List(F32),
        bottom_token_ids=pl.List(I32),
        bottom_tokens=pl.List(STR),
        bottom_values=pl.List(F32),
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="Direct logit effect of each neuron's output weights: W_out[layer] @ W_U.",
)

ACTIVATION_SAMPLE = TableSpec(
    name="activation_sample",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        activations=pl.List(
            F32
        ),  # at every sampled position, windows in activation_sample_windows order
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="Every neuron's activation on a fixed, seeded sample of token windows.",
)

ACTIVATION_SAMPLE_WINDOWS = TableSpec(
    name="activation_sample_windows",
    schema=_schema(
        model=STR,
        window=I32,  # order of the window in activation_sample's lists
        doc_index=I64,
        start=I32,  # first token position of the window (>= 1: BOS never sampled)
        length=I32,
    ),
    partition_by=("model",),
    sort_by=("model", "window"),
    description="Which token windows make up the activation sample (seeded, whole windows).",
)

NEURON_COACTIVATION = TableSpec(
    name="neuron_coactivation",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        rank=I32,  # 0 = largest |correlation|
        other_layer=I32,
        other_neuron=I32,
        correlation=F32,  # Pearson correlation on the sample; sign says co- or anti-activation
        method=STR,  # e.g. "pearson-activation-sample"
        sample_positions=I32,  # token positions the correlation is computed over
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron", "rank"),
    description="Each neuron's 10 most (anti-)correlated neurons of any layer on the activation sample.",
)

TOKEN_INDEX = TableSpec(
    name="token_index",
    schema=_schema(
        model=STR,
        token=STR,  # search key: trimmed, lower-cased; whitespace-only tokens kept as they are
        kind=STR,  # "activating", "negative" or "important"
        layer=I32,
        neuron=I32,
        activation=F32,  # fraction of the neuron's dataset max (min for negative); null: important
        source=STR,  # "examples", "graph" or "both"
    ),
    partition_by=("model",),
    sort_by=("token", "kind", "layer", "neuron"),
    description="Token -> neurons over every neuron: top/bottom example tokens plus N2G graph tokens.",
)

MODEL_METADATA = TableSpec(
    name="model_metadata",
    schema=_schema(
        model=STR,
        num_layers=I32,
        layer_size=I32,
        activation_function=STR,
        nonnegative=pl.Boolean,  # the hooked activation cannot go below 0 (ReLU): no negative side
        num_total_parameters=I64,
        dataset=STR,
        hook=STR,  # full hook name template, e.g. "blocks.{layer}.mlp.hook_post"
        loader=STR,
        context_length=I32,
        num_documents=I64,
        num_tokens=I64,
        top_k=I32,
    ),
    partition_by=("model",),
    sort_by=("model",),
    description="One row per model: its shape and how its data was computed.",
)

N2G_GRAPHS = TableSpec(
    name="n2g_graphs",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        sample=STR,  # "top" (most active of the layer) or "random" (seeded sample of live neurons)
        augmenter=STR,  # what proposed the substitutes: embedding, subject, mlm:<name>, none
        base_max_act=F32,  # the normaliser: the neuron's max activation over the dataset
        train_docs=pl.List(I64),  # doc_index of the examples the graph was built from
        test_docs=pl.List(I64),  # held-out examples the fidelity is measured on
        prompts=I32,  # pruned prompts
        samples=I32,  # prompts plus augmentations
        lines=I32,  # paths inserted into the tries
        precision=pl.Float64,  # firing class on the test tokens; null when undefined
        recall=pl.Float64,
        f1=pl.Float64,
        baseline_precision=pl.Float64,  # token-lookup baseline on the same tokens
        baseline_recall=pl.Float64,
        baseline_f1=pl.Float64,
        test_tokens=I32,
        firing_tokens=I32,
        activating_tokens=pl.List(STR),  # search keys (trimmed, lower-cased)
        activating_values=pl.List(F32),  # max normalised activation per activating token
        important_tokens=pl.List(STR),
        trie=STR,  # the prediction trie as JSON (the simulator)
        graph=STR,  # DeepDecipher's compact graph JSON
        dot=STR,  # Graphviz source
        svg=STR,  # server-rendered picture
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="Neuron2Graph per neuron: tries, pictures and held-out fidelity vs token lookup.",
)

N2G_TOKEN_INDEX = TableSpec(
    name="n2g_token_index",
    schema=_schema(
        model=STR,
        token=STR,  # search key: trimmed, lower-cased
        kind=STR,  # "activating" or "important"
        layer=I32,
        neuron=I32,
        activation=F32,  # max normalised activation of the token in the neuron's graph
    ),
    partition_by=("model",),
    sort_by=("token", "kind", "layer", "neuron"),
    description="Token -> neurons whose N2G graph holds the token (DeepDecipher's neuron store).",
)

N2G_FIDELITY = TableSpec(
    name="n2g_fidelity",
    schema=_schema(
        model=STR,
        layer=I32,  # null: the whole model
        sample=STR,  # "top" or "random": never pooled
        neurons=I32,  # graphs with a defined F1 in this sample
        f1_mean=pl.Float64,
        f1_ci_low=pl.Float64,  # 95% t-interval of the mean over neurons; null when neurons < 2
        f1_ci_high=pl.Float64,
        baseline_f1_mean=pl.Float64,  # token-lookup baseline on the same neurons and tokens
        baseline_f1_ci_low=pl.Float64,
        baseline_f1_ci_high=pl.Float64,
        method=STR,  # how the interval is computed
    ),
    partition_by=("model",),
    sort_by=("model", "layer", "sample"),
    description="N2G held-out F1 per layer and sample with a confidence interval, vs token lookup.",
)

NEURON_SIMILARITY = TableSpec(
    name="neuron_similarity",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        other_layer=I32,
        other_neuron=I32,
        similarity=F32,
    ),
    partition_by=("model",),
    sort_by=("layer", "neuron", "other_layer", "other_neuron"),
    description="Pairs of neurons (any layers) whose N2G token sets overlap (pooled overlap).",
)

MODEL_TOKENIZER = TableSpec(
    name="model_tokenizer",
    schema=_schema(
        model=STR,
        tokenizer_json=STR,  # Hugging Face `tokenizers` serialisation; "" when unavailable
        vocabulary=pl.List(STR),  # display string of every token id, as the tables show tokens
        bos_id=I32,
        special_ids=pl.List(I32),
    ),
    partition_by=("model",),
    sort_by=("model",),
    description="What the API needs to tokenize user text the way the model does (no torch).",
)

EXPLANATIONS = TableSpec(
    name="explanations",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        kind=STR,  # "top-tokens" (an offline token list, not prose) | "llm" (a model's sentence)
        explanation=STR,  # what the neuron responds to; "" when status is not "ok"
        score=pl.Float64,  # held-out correlation, pooled over top + random excerpts; null if undefined
        score_status=STR,  # "scored", "scored by fallback: <why>" or "unscored: <why>"
        score_top=pl.Float64,  # the same correlation on the top excerpts alone ("top-only")
        score_random=pl.Float64,  # ... on the random excerpts alone ("random-only")
        random_source=STR,  # the random half: "uniform-sample" | "quantile-bands" ("" if none)
        explainer=STR,  # "offline-tokens-v1", or the LLM that wrote the explanation
        scorer=STR,  # the simulator: "token-lookup-v1", an N2G predictor, or the simulator LLM
        simulator_mode=STR,  # "all-at-once" | "logprobs" | "sampled" | "offline" ("" failed)
        prompt_version=STR,  # prompt (or offline method) version the explanation came from
        status=STR,  # "ok" or "failed: <reason>"
        explain_doc_indices=pl.List(I64),  # documents (doc_index) the explanation was written from
        score_doc_indices=pl.List(I64),  # held-out documents it was scored on (disjoint)
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="One explanation per neuron with its simulation score (OpenAI-explainer style).",
)

EXPLANATION_EMBEDDINGS = TableSpec(
    name="explanation_embeddings",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        encoder=STR,  # the sentence encoder, e.g. "all-MiniLM-L6-v2"
        embedding=pl.List(pl.Float32),  # unit vector (384 floats): cosine = dot product
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="A sentence embedding of each explanation, for semantic explanation search.",
)

TOKEN_DESCRIPTION_VECTORS = TableSpec(
    name="token_description_vectors",
    schema=_schema(
        model=STR,
        description=STR,  # a dataset token in words (`semantic.describe_token`), e.g. "comma"
        encoder=STR,  # the sentence encoder, e.g. "all-MiniLM-L6-v2"
        embedding=pl.List(pl.Float32),  # unit vector (384 floats)
    ),
    partition_by=("model",),
    sort_by=("model", "description"),
    description="A sentence embedding of every dataset token's description, shared by all layers' "
    "top-tokens explanation vectors.",
)

WINDOW_EMBEDDINGS = TableSpec(
    name="window_embeddings",
    schema=_schema(
        model=STR,
        window=I32,  # row of the model's window grid
        doc_index=I64,
        start=I32,  # first token position (>= 1: BOS never included)
        length=I32,  # tokens in the window
        encoder=STR,  # the sentence encoder, e.g. "all-MiniLM-L6-v2"
        embedding=pl.List(pl.Float32),  # unit vector of the window's text: cosine = dot product
    ),
    partition_by=("model",),
    sort_by=("model", "window"),
    description="Sentence embeddings of fixed token windows of the dataset, shared by all neurons.",
)

EMBEDDING_SCORES = TableSpec(
    name="embedding_scores",
    schema=_schema(
        model=STR,
        layer=I32,
        neuron=I32,
        scorer=STR,  # "embedding-auroc-v1": never pooled with the correlation scorers
        encoder=STR,  # the sentence encoder of both the explanation and the windows
        score=pl.Float64,  # AUROC of cosine(explanation, window), positives vs negatives; null if undefined
        score_status=STR,  # "scored" or "unscored: <why>"
        positives=I32,  # held-out top windows (the peak's window of each scored top document)
        negatives=I32,  # random windows compared against
        negative_source=STR,  # "uniform-sample": grid windows of the scan's uniform sample
        mean_cosine_positive=pl.Float64,  # mean cosine with the positives, 3 decimals
        mean_cosine_negative=pl.Float64,  # ... with the negatives
        positive_doc_indices=pl.List(I64),  # documents of the positive windows
    ),
    partition_by=("model", "layer"),
    sort_by=("layer", "neuron"),
    description="A second explanation score per neuron: embedding AUROC, top windows vs random.",
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        DATASET_TOKENS,
        NEURON_EXAMPLE_CHOICES,
        NEURON_EXAMPLES,
        NEURON_STATS,
        LOGIT_EFFECTS,
        MODEL_METADATA,
        N2G_GRAPHS,
        N2G_TOKEN_INDEX,
        N2G_FIDELITY,
        NEURON_SIMILARITY,
        ACTIVATION_SAMPLE,
        ACTIVATION_SAMPLE_WINDOWS,
        NEURON_COACTIVATION,
        TOKEN_INDEX,
        MODEL_TOKENIZER,
        EXPLANATIONS,
        EXPLANATION_EMBEDDINGS,
        TOKEN_DESCRIPTION_VECTORS,
        WINDOW_EMBEDDINGS,
        EMBEDDING_SCORES,
    )
}
