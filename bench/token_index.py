"""The whole-model token index on a real data root: where its time goes, old vs new conversion.

    DEEPDECIPHER_DATA_ROOT=/path/to/data .venv/bin/python bench/token_index.py

Per layer, as the `token_index` asset does: read the top/bottom examples (the unavoidable
baseline), turn their activation lists into a matrix the old way (``np.asarray`` of Python lists)
and the new way (`activation_matrix`, straight from the column buffer; the two must be equal),
then build the layer's entries (`example_entries`). Prints the totals and the ratios.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

from dd_assets import storage
from dd_assets.methods.token_index import activation_matrix, example_entries, index_key
from dd_assets.tables import DATASET_TOKENS, MODEL_METADATA, NEURON_EXAMPLES, NEURON_STATS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--root", default=os.environ.get("DEEPDECIPHER_DATA_ROOT", "data"))
    args = ap.parse_args()
    root, model = args.root, args.model
    docs = storage.read(root, DATASET_TOKENS, model, None, ["doc_index", "tokens"]).sort(
        "doc_index"
    )
    strings = np.asarray(docs["tokens"].to_list(), dtype=object)
    keys = {t: index_key(t) for t in np.unique(strings.astype(str))}
    doc_keys = np.vectorize(keys.__getitem__, otypes=[object])(strings)
    n_layers = int(storage.read(root, MODEL_METADATA, model)["num_layers"][0])
    totals = dict.fromkeys(["read", "lists", "buffer", "entries"], 0.0)
    entries = 0
    for layer in range(n_layers):
        t0 = time.perf_counter()
        examples = storage.read(
            root,
            NEURON_EXAMPLES,
            model,
            [layer],
            ["layer", "neuron", "kind", "doc_index", "activations"],
        ).filter(pl.col("kind") != "quantile")
        stats = storage.read(root, NEURON_STATS, model, [layer], ["layer", "neuron", "max", "min"])
        t1 = time.perf_counter()
        old = np.asarray(examples["activations"].to_list(), dtype=np.float32)
        t2 = time.perf_counter()
        new = activation_matrix(examples["activations"])
        t3 = time.perf_counter()
        entries += example_entries(examples, stats, doc_keys).height
        t4 = time.perf_counter()
        np.testing.assert_array_equal(old, new)
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += dt
    print(f"{model}: {n_layers} layers, {entries:,} example entries")
    print(f"  read examples + stats     {totals['read']:6.1f} s   (baseline)")
    print(f"  lists -> matrix (old)     {totals['lists']:6.1f} s")
    print(f"  buffer -> matrix (new)    {totals['buffer']:6.1f} s   identical matrices")
    print(f"  example_entries (new)     {totals['entries']:6.1f} s")
    old_total = totals["read"] + totals["entries"] - totals["buffer"] + totals["lists"]
    new_total = totals["read"] + totals["entries"]
    print(f"  conversion ratio old/new  {totals['lists'] / totals['buffer']:6.1f}x")
    print(f"  layer loop old / new      {old_total:6.1f} s / {new_total:.1f} s")
    print(f"  ratio layer loop / read   {new_total / totals['read']:6.2f}")


if __name__ == "__main__":
    main()
