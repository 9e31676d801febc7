"""The LLM path through the real `openai` client, over HTTP, against a local fake endpoint."""

from __future__ import annotations

import numpy as np
import pytest

from dd_assets.methods.explain.client import (
    Budget,
    ChatClient,
    ClientConfig,
    ReplyCache,
    ReplyError,
)
from dd_assets.methods.explain.llm import explain_neurons
from dd_assets.methods.explain.prompts import PROMPT_VERSION, WORKED_EXAMPLES
from dd_assets.methods.explain.protocol import SCORED
from dd_assets.methods.explain.records import Excerpts
from tests.explain.fake_openai import EXPLANATION, fake_openai_server

VOCAB = ["<bos>", " a", " b", " 7", " 17", " c", "POISON"]


def excerpts(n_neurons: int = 4, poison: int | None = None) -> Excerpts:
    """Per neuron 2 explain and 2 score excerpts of 6 tokens; the neuron fires on "7" tokens."""
    rng = np.random.default_rng(0)
    rows = []
    for n in range(n_neurons):
        for j in range(4):
            ids = rng.choice([1, 2, 3, 4, 5], size=6)
            ids[j % 6] = 3  # at least one firing token per excerpt
            if poison == n and j < 2:
                ids[0] = 6
            acts = np.where(np.isin(ids, [3, 4]), 2.0, 0.0) + rng.normal(0, 0.01, 6)
            rows.append((n, j < 2, 100 * n + j, ids, acts))
    n, explain, doc, ids, acts = zip(*rows, strict=True)
    return Excerpts(
        neuron=np.asarray(n),
        explain=np.asarray(explain),
        kind=np.asarray(["top"] * len(rows)),
        rank=np.zeros(len(rows), dtype=np.int64),
        doc_index=np.asarray(doc),
        start=np.ones(len(rows), dtype=np.int64),
        token_ids=np.stack(ids),
        activations=np.stack(acts).astype(np.float32),
    )


def config(base_url: str, **kw) -> ClientConfig:
    defaults = dict(
        base_url=base_url, explainer_model="explainer-x", simulator_model="simulator-y",
        concurrency=3, max_retries=3, timeout_s=0.5, backoff_s=0.01, max_backoff_s=0.05,
    )  # fmt: skip
    return ClientConfig(**{**defaults, **kw})


def run(
    base_url: str, cache: ReplyCache | None = None, neurons=range(4), ex=None, data_key=(), **kw
):
    client = ChatClient(config(base_url, **kw), api_key="sk-test-secret")
    results = explain_neurons(
        client, ReplyCache(None) if cache is None else cache, Budget(None), "m", 3, list(neurons),
        ex if ex is not None else excerpts(), VOCAB, data_key=data_key,
    )  # fmt: skip
    return client, {r.neuron: r for r in results}


def test_explains_and_scores_with_logprobs():
    with fake_openai_server() as (fake, url):
        client, results = run(url)
    assert set(results) == {0, 1, 2, 3}
    for r in results.values():
        assert r.status == "ok" and r.explanation == EXPLANATION
        assert r.explainer == "explainer-x" and r.scorer == "simulator-y"
        assert r.simulator_mode == "logprobs" and r.prompt_version == PROMPT_VERSION
        assert r.score is not None and r.score > 0.95
        assert r.kind == "llm" and r.score_status == SCORED
        assert r.score_top == pytest.approx(r.score) and r.score_random is None  # no random half
        assert not set(r.explain_doc_indices) & set(r.score_doc_indices)
    assert fake.count("explain") == 4 and fake.count("simulate") == 8
    assert {r["model"] for r in fake.requests} == {"explainer-x", "simulator-y"}
    assert fake.max_in_flight <= 3
    assert "sk-test-secret" not in repr(client)


def test_retries_429_500_timeout_and_malformed_json():
    with fake_openai_server() as (fake, url):
        fake.actions.extend(["429", "500", "hang", "malformed"])
        client, results = run(url, neurons=[0], concurrency=1, max_retries=4)
    assert results[0].status == "ok" and results[0].score is not None
    assert client.retries == 4
    assert fake.count("explain") == 5  # four failures, then the answer


def test_a_neuron_that_keeps_failing_is_recorded_and_the_others_go_on():
    with fake_openai_server() as (fake, url):
        _, results = run(url, ex=excerpts(poison=1))
    assert results[1].status.startswith("failed: malformed reply")
    assert results[1].score is None and results[1].explanation == ""
    assert results[1].explain_doc_indices == [100, 101]
    assert all(results[n].status == "ok" for n in (0, 2, 3))


def test_retries_are_bounded():
    with fake_openai_server() as (fake, url):
        fake.actions.extend(["500"] * 10)
        _, results = run(url, neurons=[0], concurrency=1, max_retries=2)
    assert results[0].status == "failed: HTTP 500, after 3 attempts"
    assert fake.count("explain") == 3


def test_timeouts_exhaust_into_a_failed_record():
    with fake_openai_server() as (fake, url):
        fake.actions.extend(["hang"] * 3)
        fake.hang_s = 1.0
        _, results = run(url, neurons=[0], concurrency=1, max_retries=1, timeout_s=0.2)
    assert results[0].status == "failed: timeout, after 2 attempts"


@pytest.mark.parametrize("behaviour", ["ignore_logprobs", "refuse_logprobs"])
def test_without_logprobs_the_sampled_values_are_scored(behaviour):
    with fake_openai_server() as (fake, url):
        setattr(fake, behaviour, True)
        client, results = run(url, neurons=[0, 1], concurrency=1)
    for r in results.values():
        assert r.status == "ok" and r.simulator_mode == "sampled" and r.score > 0.95
    assert client.logprobs_supported is (behaviour == "ignore_logprobs")


def test_cache_means_nothing_is_asked_twice(tmp_path):
    path = tmp_path / "cache.jsonl"
    with fake_openai_server() as (fake, url):
        _, first = run(url, cache=ReplyCache(path))
        asked = len(fake.requests)
        _, second = run(url, cache=ReplyCache(path))  # a new process would load the same file
        assert len(fake.requests) == asked
    assert {n: r.score for n, r in first.items()} == {n: r.score for n, r in second.items()}
    text = path.read_text()
    assert "sk-test-secret" not in text and '"explainer-x"' in text


def test_token_budget_stops_starting_neurons():
    with fake_openai_server() as (fake, url):
        client = ChatClient(config(url, concurrency=1), api_key="k")
        budget = Budget(max_tokens=300)  # one neuron uses 3 x 110 tokens
        results = explain_neurons(
            client, ReplyCache(None), budget, "m", 0, [0, 1, 2, 3], excerpts(), VOCAB
        )
    assert [r.neuron for r in results] == [0]
    assert budget.used == 330 and budget.exhausted


def test_other_4xx_is_not_retried():
    with fake_openai_server() as (fake, url):
        fake.actions.extend(["401", "404"])
        client = ChatClient(config(url), api_key="k")
        for status in ("401", "404"):
            with pytest.raises(ReplyError, match=f"HTTP {status}"):
                client.complete([{"role": "user", "content": "Explanation of neuron"}], "m", 5)
        assert len(fake.requests) == 2


def test_an_explanation_that_repeats_a_worked_example_is_asked_again_then_refused():
    copied = [WORKED_EXAMPLES[0][1], WORKED_EXAMPLES[2][1].upper()]
    with fake_openai_server() as (fake, url):
        fake.explanations.extend(copied)  # two copies, then a real reading
        _, results = run(url, neurons=[0], concurrency=1)
        assert fake.count("explain") == 3
        assert results[0].status == "ok" and results[0].explanation == EXPLANATION
        fake.explanations.extend([WORKED_EXAMPLES[1][1]] * 3)  # never anything else
        _, results = run(url, neurons=[1], concurrency=1)
    r = results[1]
    assert r.status.startswith("failed: explanation repeats a worked example")
    assert r.score is None and r.score_status.startswith("unscored: explanation failed")


def test_cache_keys_carry_the_data_identity_and_the_excerpt_tokens(tmp_path):
    path = tmp_path / "cache.jsonl"
    with fake_openai_server() as (fake, url):
        run(url, cache=ReplyCache(path), neurons=[0], data_key=["docs-a", 24, 20])
        asked = len(fake.requests)
        run(url, cache=ReplyCache(path), neurons=[0], data_key=["docs-a", 24, 20])
        assert len(fake.requests) == asked  # same data: all from the cache
        run(url, cache=ReplyCache(path), neurons=[0], data_key=["docs-b", 24, 20])
        assert fake.count("explain") == 2  # another dataset: asked again
        changed = excerpts()
        changed.token_ids[changed.neuron == 0] = 5  # same documents and starts, other text
        run(url, cache=ReplyCache(path), neurons=[0], ex=changed, data_key=["docs-a", 24, 20])
        assert fake.count("explain") == 3
