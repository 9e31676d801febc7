"""How many neurons each feature reaches on a materialized model, as a user reaches them: over HTTP.

    .venv/bin/python bench/coverage.py                 # default model, data from ./data
    .venv/bin/python bench/coverage.py --sample 200

Starts ``deepdecipher serve`` (default settings) and asks:

- token search over the whole model (``/api/{model}/token-search``): for common code tokens
  (``the``, ``def``, a newline, ``)``, ``,``), how many neurons and how many of the model's layers
  each reaches, per type (``any``, ``activating``, ``negative``);
- for a seeded random sample of neurons: the share that have most-negative examples
  (``bottom_examples``), 10 co-activation similar neurons (``similar_neurons``), an explanation
  with a score or a stated reason (``neuron_explainer``), and a Neuron2Graph graph.

No timing: this is the "does it reach everyone" check of the features, with counts.
"""

from __future__ import annotations

import argparse
import random

import httpx
from _common import local_server

TOKENS = ["the", "def", "\\n", ")", "\\,", "self", "import"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--sample", type=int, default=100, help="random neurons to check")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    m = args.model
    with local_server() as base, httpx.Client(base_url=base, timeout=300) as client:
        meta = client.get(f"/api/{m}/metadata").json()["data"]
        n_layers, size = int(meta["num_layers"]), int(meta["layer_size"])
        print(f"{m}: {n_layers} layers x {size} neurons = {n_layers * size:,} neurons")
        print("token search over every neuron (/token-search):")
        for token in TOKENS:
            cells = []
            for kind in ("any", "activating", "negative"):
                layers: set[int] = set()
                offset, total = 0, 1
                while offset < total:  # every page: which layers the matches come from
                    body = client.get(
                        f"/api/{m}/token-search",
                        params={"query": f"{kind}:{token}", "limit": 1000, "offset": offset},
                    ).json()
                    total = body.get("total", 0)
                    layers |= {hit["layer"] for hit in body.get("data", [])}
                    offset += 1000
                cells.append(f"{kind} {total:6,d} neurons, {len(layers):2d}/{n_layers} layers")
            print(f"  {token!r:10} " + " | ".join(cells))
        rng = random.Random(args.seed)
        picks = [(rng.randrange(n_layers), rng.randrange(size)) for _ in range(args.sample)]
        counts = {"bottom_examples": 0, "similar_neurons (10)": 0, "explanation scored": 0,
                  "explanation with reason": 0, "neuron2graph": 0}  # fmt: skip
        for layer, neuron in picks:
            every = client.get(f"/api/{m}/all/{layer}/{neuron}").json()
            bottom = every.get("bottom_examples", {}).get("data") or {}
            counts["bottom_examples"] += bool(bottom.get("texts")) or bool(
                bottom.get("nonnegative")
            )
            similar = every.get("similar_neurons", {}).get("data") or {}
            counts["similar_neurons (10)"] += len(similar.get("similar", [])) == 10
            expl = every.get("neuron_explainer", {}).get("data") or {}
            counts["explanation scored"] += expl.get("score") is not None
            counts["explanation with reason"] += expl.get("score") is None and bool(
                expl.get("score_status", "").startswith("unscored")
            )
            counts["neuron2graph"] += "data" in every.get("neuron2graph", {})
        print(f"{args.sample} random neurons (seed {args.seed}):")
        for name, count in counts.items():
            print(f"  {name:<26} {count:4d} / {args.sample}")


if __name__ == "__main__":
    main()
