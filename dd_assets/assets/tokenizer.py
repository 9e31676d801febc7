"""The model's tokenizer as data, so the API can tokenize user text without torch or the model."""

import dagster as dg
import polars as pl

from dd_assets.models import model_shape, vocabulary_strings
from dd_assets.partitions import model_partitions
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import MODEL_TOKENIZER


@dg.asset(partitions_def=model_partitions, group_name="dataset", kinds={"delta"})
def model_tokenizer(
    context: dg.AssetExecutionContext, registry: RegistryResource, models: ModelLoader
) -> pl.DataFrame:
    """Serialized fast tokenizer, display vocabulary, BOS and special token ids."""
    spec = registry.spec(context.partition_key)
    bridge = models.bridge(spec)
    tok = bridge.tokenizer
    shape = model_shape(bridge)
    backend = getattr(tok, "backend_tokenizer", None)
    serialized = backend.to_str() if backend is not None else ""
    if not serialized:
        context.log.warning(f"{spec.name}: no fast tokenizer; N2G predictions over text disabled")
    context.add_output_metadata({"vocabulary": shape.d_vocab, "fast_tokenizer": bool(serialized)})
    return pl.DataFrame(
        {
            "model": [spec.name],
            "tokenizer_json": [serialized],
            "vocabulary": [vocabulary_strings(tok, shape.d_vocab)],
            "bos_id": [shape.bos_id],
            "special_ids": [sorted(set(tok.all_special_ids))],
        }
    ).cast(dict(MODEL_TOKENIZER.schema))
