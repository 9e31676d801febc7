"""Which tables each service and search reads: data only, so that metadata can list the
available services without importing the services themselves."""

from __future__ import annotations

from dd_assets.tables import (
    ACTIVATION_SAMPLE_WINDOWS,
    DATASET_TOKENS,
    EXPLANATIONS,
    LOGIT_EFFECTS,
    MODEL_METADATA,
    N2G_GRAPHS,
    N2G_TOKEN_INDEX,
    NEURON_COACTIVATION,
    NEURON_EXAMPLES,
    NEURON_STATS,
    TOKEN_INDEX,
    TableSpec,
)

SERVICE_TABLES: dict[str, tuple[TableSpec, ...]] = {
    "metadata": (MODEL_METADATA,),
    "neuroscope": (NEURON_EXAMPLES, DATASET_TOKENS),
    "quantile_examples": (NEURON_EXAMPLES, DATASET_TOKENS),
    # The windows table comes from the same scan as the bottom examples: a model scanned before
    # they existed lacks it and reports missing data until it is rescanned.
    "bottom_examples": (NEURON_EXAMPLES, DATASET_TOKENS, NEURON_STATS, ACTIVATION_SAMPLE_WINDOWS),
    "similar_neurons": (NEURON_COACTIVATION, ACTIVATION_SAMPLE_WINDOWS),
    "activation_stats": (NEURON_STATS,),
    "logit_effects": (LOGIT_EFFECTS,),
    "neuron2graph": (N2G_GRAPHS,),
    "neuron_explainer": (EXPLANATIONS,),
}
"""Service name -> the tables it reads, in DeepDecipher's order of services."""

SEARCH_TABLES: dict[str, tuple[TableSpec, ...]] = {
    "neuron2graph-search": (N2G_TOKEN_INDEX,),
    "explanation-search": (EXPLANATIONS,),
    "token-search": (TOKEN_INDEX,),
}
"""Search route name -> the tables it reads (listed in ``available_services`` when present)."""
