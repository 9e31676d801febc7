"""What every service returns, as msgspec Structs: the JSON contract and the OpenAPI components.

Field names follow DeepDecipher where it has the service (metadata, neuroscope, neuron2graph,
neuron_explainer); the rest are ours. Float arrays are held as numpy float32 at run time and
typed ``list[float]`` here: the web layer encodes them in their shortest float32 form. Fields
typed ``dict[str, Any]`` hold stored JSON passed through verbatim (N2G graph and trie).
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class NeuronIndex(Struct, frozen=True):
    layer: int
    neuron: int


# -- metadata ---------------------------------------------------------------------------------


class Metadata(Struct, frozen=True):
    """DeepDecipher's model metadata plus how the data was computed."""

    name: str
    num_layers: int
    layer_size: int
    activation_function: str
    num_total_neurons: int
    num_total_parameters: int
    dataset: str
    available_services: list[str]
    """Services with data for the model, and the search services it has (DeepDecipher's UI
    shows its token search only when ``neuron2graph-search`` is listed)."""
    hook: str
    loader: str
    context_length: int
    num_documents: int
    num_tokens: int
    top_k: int


# -- neuroscope -------------------------------------------------------------------------------


class Text(Struct, omit_defaults=True):
    """One document with the neuron's activation on each of its tokens."""

    min_activation: float
    max_activation: float
    """Exactly the largest of ``activations`` (both are float32 rounded to 6 decimals)."""
    data_index: int
    """The document's row in ``dataset_tokens``."""
    max_activating_token_index: int
    tokens: list[str]
    activations: list[float]
    source: str
    min_range: float | None = None
    """Extremes over the neuron's top texts (a shared colour scale); absent in quantile bands."""
    max_range: float | None = None


class NeuroscopeNeuron(Struct):
    neuron_index: NeuronIndex
    texts: list[Text]
    """The neuron's max-activating documents, strongest first."""
    min_range: float | None
    max_range: float | None


class NeuroscopeLayer(Struct, omit_defaults=True):
    num_neurons: int
    important_neurons: list[tuple[NeuronIndex, float]]
    """(neuron, activation range of its top text), widest range first; paginated."""
    total: int | None = None
    """Length of the whole ranking (``important_neurons`` is one page of it); absent in
    ``all``, which serves the whole ranking."""


class NeuroscopeModel(Struct, omit_defaults=True):
    important_neurons: list[tuple[NeuronIndex, float]]
    total: int | None = None


class QuantileBand(Struct):
    band: str
    """``"0.90-0.99"``: the band's quantiles of the neuron's document maxima."""
    lower_quantile: float
    upper_quantile: float
    texts: list[Text]


class QuantileNeuron(Struct):
    neuron_index: NeuronIndex
    bands: list[QuantileBand]


# -- activation statistics --------------------------------------------------------------------


class Histogram(Struct):
    edges: list[float]
    counts: list[int]
    sampled_positions: int
    """Counts cover a systematic sample of positions (every n-th); moments use all of them."""


class StatsNeuron(Struct):
    neuron_index: NeuronIndex
    count: int
    max: float | None
    min: float | None
    mean: float | None
    std: float | None
    frac_positive: float | None
    histogram: Histogram


class StatsLayer(Struct):
    num_neurons: int
    max: list[float]
    min: list[float]
    mean: list[float]
    frac_positive: list[float]


class LayerStats(Struct):
    layer: int
    mean_max: float | None
    mean_frac_positive: float | None
    dead_neurons: int


class StatsModel(Struct):
    layers: list[LayerStats]


# -- logit effects ----------------------------------------------------------------------------


class LogitToken(Struct):
    token: str
    token_id: int
    value: float


class LogitNeuron(Struct):
    neuron_index: NeuronIndex
    top: list[LogitToken]
    bottom: list[LogitToken]


# -- neuron explainer -------------------------------------------------------------------------


class EmbeddingScore(Struct):
    """A second score of the explanation, independent of the simulation: embedding AUROC
    (scorer ``embedding-auroc-v1``). Never pooled with the correlation."""

    scorer: str
    encoder: str
    """The sentence encoder of both the explanation and the windows."""
    score: float | None
    """AUROC of cosine(explanation, window) separating the windows around the peaks of the
    held-out top excerpts from uniform random windows (0.5 chance, 1 perfect); null when
    undefined (see score_status)."""
    score_status: str
    """``scored`` or ``unscored: <why>``."""
    positives: int
    negatives: int
    negative_source: str
    """``uniform-sample``: the grid windows of the scan's uniform random sample."""
    mean_cosine_positive: float | None
    mean_cosine_negative: float | None
    positive_doc_indices: list[int]


class ExplainerNeuron(Struct):
    neuron_index: NeuronIndex
    kind: str
    """``top-tokens`` (an offline token list, a token-lookup baseline) or ``llm`` (prose)."""
    explanation: str
    score: float | None
    """Correlation of simulated and true activations pooled over the top and random held-out
    excerpts; null when undefined (see score_status)."""
    score_status: str
    """``scored``, ``scored by fallback: <why>`` or ``unscored: <why>``."""
    score_reason: str | None
    """Why ``score`` is null; null when there is a score (kept for older clients)."""
    score_top: float | None
    """The same correlation on the top excerpts alone ("top-only")."""
    score_random: float | None
    """The same correlation on the random excerpts alone ("random-only")."""
    random_source: str
    """Where the random excerpts came from: ``uniform-sample`` or ``quantile-bands``."""
    explainer: str
    scorer: str
    simulator_mode: str
    prompt_version: str
    status: str
    explain_doc_indices: list[int]
    score_doc_indices: list[int]
    embedding_score: EmbeddingScore | None
    """The embedding AUROC of the same explanation; null when the model has none computed."""


class ScorerSummary(Struct):
    """Scores of one scorer: scores of different scorers are never pooled."""

    scorer: str
    kind: list[str]
    count: int
    scored: int
    unscored: int
    mean_score: float | None
    quartiles: list[float | None] | None
    share_at_least_0_8: float | None
    mean_score_top: float | None
    mean_score_random: float | None
    unscored_reasons: dict[str, int]
    """``score_status`` of the unscored rows -> how many."""


class ScoreSummary(Struct):
    """Explanation scores of a layer or of the whole model. ``mean_score`` and ``quartiles``
    are those of the one scorer when there is exactly one, else null: see ``by_scorer``."""

    num_neurons: int
    explained: int
    failed: int
    scored: int
    mean_score: float | None
    quartiles: list[float | None]
    explainers: list[str]
    by_scorer: list[ScorerSummary]
    """The correlation scores, one entry per scorer."""
    by_embedding_scorer: list[ScorerSummary]
    """The embedding AUROC scores, one entry per scorer and explanation kind (AUROC: 0.5 is
    chance); empty when the model has none computed."""


class ExplainerLayer(ScoreSummary):
    layer: int


class ExplainerModel(ScoreSummary):
    layers: list[ExplainerLayer]


# -- neuron2graph -----------------------------------------------------------------------------


class SimilarNeuron(Struct):
    layer: int
    neuron: int
    similarity: float


class Baseline(Struct):
    method: str
    precision: float | None
    recall: float | None
    f1: float | None


class Fidelity(Struct):
    precision: float | None
    recall: float | None
    f1: float | None
    test_tokens: int
    firing_tokens: int
    baseline: Baseline


class GraphNeuron(Struct):
    neuron_index: NeuronIndex
    graph: dict[str, Any]
    """DeepDecipher's compact graph JSON."""
    graphviz: str
    svg: str
    similar: list[SimilarNeuron]
    fidelity: Fidelity
    augmenter: str
    base_max_activation: float | None
    train_docs: list[int]
    test_docs: list[int]
    prompts: int
    samples: int
    lines: int
    trie: dict[str, Any]
    """The prediction trie (the simulator) as stored."""


class GraphNeuronFidelity(Struct):
    neuron: int
    precision: float | None
    recall: float | None
    f1: float | None
    baseline_f1: float | None
    augmenter: str


class GraphSummary(Struct):
    """Coverage and mean held-out fidelity of the graphs of a layer or of the whole model."""

    num_neurons: int
    num_graphs: int
    coverage: float
    mean_precision: float | None
    mean_recall: float | None
    mean_f1: float | None
    mean_baseline_precision: float | None
    mean_baseline_recall: float | None
    mean_baseline_f1: float | None


class GraphLayer(GraphSummary):
    neurons: list[GraphNeuronFidelity]
    """Per graphed neuron, best F1 first."""


class GraphLayerSummary(GraphSummary):
    layer: int


class GraphModel(Struct):
    layers: list[GraphLayerSummary]
    overall: GraphSummary


class Prediction(Struct):
    neuron_index: NeuronIndex
    tokens: list[str]
    activations: list[float]
    """Predicted activation per token as a fraction of ``base_max_activation``."""
    scaled_activations: list[float]
    base_max_activation: float | None
    mode: str


# -- bottom_examples, similar_neurons (every neuron, both signs) ------------------------------


class BottomNeuron(Struct, omit_defaults=True):
    """A neuron's most negative documents, most negative first, on one colour scale."""

    neuron_index: NeuronIndex
    nonnegative: bool
    """The model's hooked activation is never negative (ReLU): no texts, and ``note`` says so."""
    texts: list[Text]
    min_range: float | None = None
    max_range: float | None = None
    note: str | None = None


class BottomLayer(Struct, omit_defaults=True):
    nonnegative: bool
    negative_neurons: list[tuple[NeuronIndex, float]]
    """Neurons whose dataset min is below 0, most negative first, with that min."""
    num_neurons: int | None = None
    note: str | None = None


class CoactiveNeuron(Struct):
    layer: int
    neuron: int
    correlation: float
    sign: str
    """``positive`` or ``negative`` (the sign of the correlation)."""


class SimilarNeurons(Struct, omit_defaults=True):
    """The neurons of any layer most (anti-)correlated with this one on the activation sample."""

    neuron_index: NeuronIndex
    method: str
    sample_positions: int
    similar: list[CoactiveNeuron]
    note: str | None = None
    """Set when the list is empty: the neuron is constant on the sample."""


# -- searches ---------------------------------------------------------------------------------


class TokenMatch(Struct):
    layer: int
    neuron: int
    activation: float | None
    """Strongest matched activating token's activation; null for important-only matches."""


class TokenSearch(Struct):
    data: list[TokenMatch]
    total: int
    query: str
    """The query as understood (canonical form)."""


class ExplanationMatch(Struct):
    layer: int
    neuron: int
    explanation: str
    kind: str  # "top-tokens" | "llm"
    score: float | None
    rank: int
    relevance: float  # what the ranking sorts by: the fused score, the BM25 score or the cosine
    bm25: float | None  # BM25 relevance; None where not every query word occurs
    similarity: float | None  # cosine to the query's embedding; None without embeddings


class ExplanationSearch(Struct):
    data: list[ExplanationMatch]
    total: int
    query: str
    ranking: str  # e.g. "hybrid-rrf(bm25, all-MiniLM-L6-v2, k=60)", "bm25"


# -- live model (the inference service's numbers beside the stored ones) -----------------------


class LiveActivations(Struct):
    """A neuron's real activation on each token of the caller's text (BOS first)."""

    neuron_index: NeuronIndex
    tokens: list[str]
    token_ids: list[int]
    activations: list[float]
    """Rounded to 6 decimals like the stored Neuroscope activations."""
    max_activation: float
    min_activation: float
    """The text's extremes after BOS."""
    max_activating_token_index: int
    dataset_max: float | None
    dataset_min: float | None
    """The neuron's extremes over the dataset (``activation_stats``): the colour scale."""
    method: str
    range_source: str
    n2g_prediction: Prediction | None
    n2g_note: str | None
    """Why ``n2g_prediction`` is null (no graph for the model or this neuron)."""


class FiringNeuron(Struct):
    layer: int
    neuron: int
    activation: float
    """The neuron's largest activation over the text after BOS, at ``peak_token_index``."""
    dataset_max: float
    relative_activation: float
    """``activation / dataset_max``."""
    peak_token_index: int
    peak_token: str


class TextSearch(Struct):
    """Neurons ranked by their peak activation on a text relative to their dataset max."""

    tokens: list[str]
    token_ids: list[int]
    neurons: list[FiringNeuron]
    total: int
    unranked: int
    """Neurons whose dataset max is <= 0: no ratio, so counted but not ranked."""
    layers: list[int]
    method: dict[str, str]


class IndexEntry(Struct):
    """One entry of the whole-model token index that a hit matched."""

    token: str
    kind: str
    """``activating``, ``negative`` or ``important``."""
    source: str
    """``examples``, ``graph`` or ``both``."""
    activation: float | None


class ModelTokenMatch(Struct):
    layer: int
    neuron: int
    activation: float | None
    """Strongest matched activation (fraction of the neuron's max, or of its min for
    ``negative``); null for important-only matches."""
    matches: list[IndexEntry]


class ModelTokenSearch(Struct):
    data: list[ModelTokenMatch]
    total: int
    query: str
    """The query as understood (canonical form)."""
