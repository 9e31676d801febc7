"""Sustained mixed load on 127.0.0.1: every served route kind at once, many connections.

    apt-get install -y wrk
    .venv/bin/python bench/load.py --connections 64 --seconds 30

With DEFAULT server settings, over a copy of the data root. Runs /health (the baseline), the
neuron-page mix of bench/api.py (random neurons over all layers, the five services a neuron page
reads) and the broad mix below; then /health and the page mix again while a background process
writes another model into the same tables. The broad mix drives of neuron-level (neuroscope, quantile_examples, activation_stats,
logit_effects, neuron_explainer, all), Neuron2Graph graphs of covered neurons, token searches,
predictions and explanation searches, layer-level and model-level routes, and the web UI's neuron
and layer pages, and reports req/s, p50/p99 and the count of non-2xx answers (must be 0; bad input
is covered by the tests). A trivial /health run under the same load is the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import httpx
from _common import local_server, other_model_writes, page_mix_script, run_wrk, server_rss_mb

LUA = """
math.randomseed(1)
local L, N, M = %(layers)d, %(neurons)d, "%(model)s"
local neuron_services = {"neuroscope", "quantile_examples", "activation_stats", "logit_effects",
                         "neuron_explainer", "all"}
local graphs = {%(graphs)s}
local tokens = {%(tokens)s}
local words = {"tokens", "promotes", "def", "the", "self", "after", "return", "import"}
request = function()
  local r = math.random()
  local path
  if r < 0.55 then
    local s = neuron_services[math.random(#neuron_services)]
    path = "/api/" .. M .. "/" .. s .. "/" .. math.random(0, L - 1) .. "/" .. math.random(0, N - 1)
  elseif r < 0.65 then
    path = "/viz/" .. M .. "/" .. math.random(0, L - 1) .. "/" .. math.random(0, N - 1)
  elseif r < 0.67 then
    path = "/viz/" .. M .. "/" .. math.random(0, L - 1) .. "?limit=100"
  elseif r < 0.75 and #graphs > 0 then
    path = "/api/" .. M .. "/neuron2graph/" .. graphs[math.random(#graphs)]
  elseif r < 0.82 and #tokens > 0 then
    path = "/api/" .. M .. "/neuron2graph-search?query=any:" .. tokens[math.random(#tokens)]
  elseif r < 0.85 and #graphs > 0 then
    path = "/api/" .. M .. "/neuron2graph-predict/" .. graphs[math.random(#graphs)] .. "?text=def%%20main():%%20return%%20None"
  elseif r < 0.88 then
    path = "/api/" .. M .. "/explanation-search?q=" .. words[math.random(#words)] .. "&limit=20"
  elseif r < 0.92 then
    path = "/api/" .. M .. "/neuroscope/" .. math.random(0, L - 1) .. "?limit=50"
  else
    path = "/api/" .. M .. "/metadata"
  end
  return wrk.format("GET", path)
end
"""


SEARCH_TOKENS = ["the", "def", "return", "import", "self", "of", "is", "in", "for", "to"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--connections", type=int, default=64)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="dd-load-")
    root = os.path.join(tmp, "data")
    shutil.copytree(os.environ.get("DEEPDECIPHER_DATA_ROOT", "data"), root)
    try:
        run(args, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, root: str) -> None:
    with local_server(DEEPDECIPHER_DATA_ROOT=root) as base:
        meta = httpx.get(f"{base}/api/{args.model}/metadata", timeout=30).json()["data"]
        layers, neurons = meta["num_layers"], meta["layer_size"]
        graphs = []
        for layer in range(layers):  # warm every per-layer partition once
            httpx.get(f"{base}/api/{args.model}/all/{layer}/0", timeout=120)
            summary = httpx.get(f"{base}/api/{args.model}/neuron2graph/{layer}", timeout=120)
            if summary.status_code == 200 and "data" in summary.json():
                graphs += [f'"{layer}/{n["neuron"]}"' for n in summary.json()["data"]["neurons"]]
        tokens = [f'"{t}"' for t in SEARCH_TOKENS]
        httpx.get(f"{base}/api/{args.model}/explanation-search?q=tokens", timeout=120)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(
                LUA
                % {
                    "layers": layers,
                    "neurons": neurons,
                    "model": args.model,
                    "graphs": ",".join(graphs),
                    "tokens": ",".join(tokens),
                }
            )
        page = page_mix_script(args.model, layers, neurons, seed=2)
        runs = [
            ("trivial /health", run_wrk(f"{base}/health", args.seconds, args.connections)),
            ("neuron-page mix", run_wrk(f"{base}/", args.seconds, args.connections, page)),
            ("mixed API + UI", run_wrk(f"{base}/", args.seconds, args.connections, f.name)),
        ]
        rss = server_rss_mb()
        with other_model_writes(root, args.model) as commits:
            runs += [
                ("/health, writes", run_wrk(f"{base}/health", args.seconds, args.connections)),
                ("page mix, writes", run_wrk(f"{base}/", args.seconds, args.connections, page)),
            ]
            written = commits()
    print(f"load: wrk, {args.connections} connections, {args.seconds} s each, 127.0.0.1, "
          f"default settings; server RSS {rss:.0f} MiB; {written} commits of another model "
          "during the last two runs")  # fmt: skip
    for name, r in runs:
        print(f"  {name:<18} {r['requests']:7d} requests  {r['rps']:7.0f} req/s  "
              f"p50 {r['p50']:6.2f} ms  p99 {r['p99']:7.2f} ms  non-2xx {r['errors']}  "
              f"socket errors: {r['socket_errors']}")  # fmt: skip
    for base_name, mix in (
        ("trivial /health", "neuron-page mix"),
        ("/health, writes", "page mix, writes"),
    ):
        ratio = dict(runs)[mix]["rps"] / dict(runs)[base_name]["rps"]
        print(f"  ratio {mix} / {base_name}: {ratio:.3f}")


if __name__ == "__main__":
    main()
