"""The tokenized dataset, per model (each model scans the same text with its own tokenizer)."""

import dagster as dg
import polars as pl

from dd_assets.methods.documents import pack_documents
from dd_assets.models import model_shape, token_strings
from dd_assets.partitions import model_partitions
from dd_assets.resources import ModelLoader, RegistryResource
from dd_assets.tables import DATASET_TOKENS
from dd_assets.text_sources import text_pieces


@dg.asset(partitions_def=model_partitions, group_name="dataset", kinds={"delta", "polars"})
def dataset_tokens(
    context: dg.AssetExecutionContext, registry: RegistryResource, models: ModelLoader
) -> pl.DataFrame:
    """Documents of `context_length` tokens (BOS first) cut from the model's dataset."""
    spec = registry.spec(context.partition_key)
    bridge = models.bridge(spec)
    tok = bridge.tokenizer
    shape = model_shape(bridge)
    docs = pack_documents(
        text_pieces(spec.dataset),
        encode=lambda text: tok.encode(text, add_special_tokens=False),
        bos_id=shape.bos_id,
        context_length=spec.context_length,
        num_documents=spec.num_documents,
    )
    if not docs:
        raise ValueError(f"dataset {spec.dataset.describe()} produced no full document")
    vocab: dict[int, str] = {}
    for d in docs:
        for i in d.token_ids:
            if i not in vocab:
                vocab[i] = token_strings(tok, [i])[0]
    frame = pl.DataFrame(
        {
            "model": [spec.name] * len(docs),
            "doc_index": list(range(len(docs))),
            "source": [d.source for d in docs],
            "token_ids": [d.token_ids for d in docs],
            "tokens": [[vocab[i] for i in d.token_ids] for d in docs],
        },
        schema=DATASET_TOKENS.schema,
    )
    kinds = frame["source"].str.split(":").list.first().value_counts()
    context.add_output_metadata(
        {
            "documents": len(docs),
            "tokens": len(docs) * spec.context_length,
            "sources": dg.MetadataValue.md(
                "\n".join(f"- {r['source']}: {r['count']}" for r in kinds.iter_rows(named=True))
            ),
        }
    )
    return frame
