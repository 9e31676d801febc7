"""Jobs: one runs a model's model-level assets, the other one (model, layer) partition."""

import dagster as dg

from dd_assets.assets.explanations import explanations
from dd_assets.assets.logit_effects import logit_effects
from dd_assets.assets.metadata import model_metadata
from dd_assets.assets.neuroscope import neuron_examples
from dd_assets.assets.scan import activation_scan
from dd_assets.assets.tokens import dataset_tokens
from dd_assets.partitions import model_layer_partitions, model_partitions

MODEL_ASSETS = [dataset_tokens, activation_scan, neuron_examples, model_metadata]
LAYER_ASSETS = [logit_effects, explanations]
ALL_ASSETS = [*MODEL_ASSETS, *LAYER_ASSETS]

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
