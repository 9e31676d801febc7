"""Jobs: a model's model-level assets, one (model, layer) partition, and the model-wide summaries."""

import dagster as dg

from dd_assets.assets.coactivation import neuron_coactivation
from dd_assets.assets.embedding_scores import embedding_scores
from dd_assets.assets.explanation_embeddings import (
    explanation_embeddings,
    token_description_vectors,
)
from dd_assets.assets.explanations import explanations
from dd_assets.assets.logit_effects import logit_effects
from dd_assets.assets.metadata import model_metadata
from dd_assets.assets.n2g import n2g_fidelity, n2g_graphs, n2g_token_index, neuron_similarity
from dd_assets.assets.scan import activation_scan
from dd_assets.assets.token_index import token_index
from dd_assets.assets.tokenizer import model_tokenizer
from dd_assets.assets.tokens import dataset_tokens
from dd_assets.assets.window_embeddings import window_embeddings
from dd_assets.partitions import model_layer_partitions, model_partitions

MODEL_ASSETS = [
    dataset_tokens,
    activation_scan,
    neuron_coactivation,
    model_metadata,
    model_tokenizer,
    token_description_vectors,
    window_embeddings,
]
# explanations after n2g_graphs: the offline explainer scores with the layer's N2G graphs;
# explanation_embeddings after explanations (explanation-search ranks by them); embedding_scores
# after explanation_embeddings: it compares those vectors with window_embeddings.
LAYER_ASSETS = [logit_effects, n2g_graphs, explanations, explanation_embeddings, embedding_scores]
# Model-level assets that read every layer of a per-layer asset: run after all layers are done.
SUMMARY_ASSETS = [n2g_token_index, neuron_similarity, token_index, n2g_fidelity]
ALL_ASSETS = [*MODEL_ASSETS, *LAYER_ASSETS, *SUMMARY_ASSETS]

model_job = dg.define_asset_job(
    "model_assets",
    selection=dg.AssetSelection.assets(*MODEL_ASSETS),
    partitions_def=model_partitions,
    description="Everything computed once per model: tokens, the activation scan, Neuroscope data.",
)
layer_job = dg.define_asset_job(
    "layer_assets",
    selection=dg.AssetSelection.assets(*LAYER_ASSETS),
    partitions_def=model_layer_partitions,
    description="Per-layer assets of one (model, layer) partition.",
)
summary_job = dg.define_asset_job(
    "summary_assets",
    selection=dg.AssetSelection.assets(*SUMMARY_ASSETS),
    partitions_def=model_partitions,
    description="Model-wide indexes built from every layer: N2G token search, similar neurons.",
)
