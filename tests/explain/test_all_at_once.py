"""The all-at-once simulator: its prompt, reading echoed prompt log-probabilities, and the LLM path
choosing it where the endpoint echoes (the scripted fake server; llama.cpp's server refuses echo)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from dd_assets.methods.explain.all_at_once import VERSION, echo_prompt, read_echo
from dd_assets.methods.explain.client import ChatClient, ClientConfig, ReplyCache
from dd_assets.methods.explain.prompts import WORKED_EXAMPLES
from dd_assets.methods.explain.simulate import ALL_AT_ONCE
from tests.explain.fake_openai import EXPLANATION, fake_openai_server
from tests.explain.test_client import config
from tests.explain.test_client import run as run_with

LOG = math.log


def run(url: str, **kw):
    """`test_client.run` with a timeout a loaded machine cannot hit: these tests count requests,
    and a timed-out request is retried (the fault cases are `test_client`'s)."""
    return run_with(url, **{"timeout_s": 30.0, **kw})


def split(text: str) -> list[str]:
    """A toy tokenizer: line text, tabs and newlines are tokens (what the fake server does)."""
    return re.findall(r"[\t\n]|[^\t\n]+", text)


def echo_of(prompt, values: dict[int, dict[str, float]]):
    """Echoed tokens and top log-probs: `values[j]` at the token of the j-th value position."""
    tokens = split(prompt.text)
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    tops: list[dict[str, float] | None] = [{t: 0.0} for t in tokens]
    tops[0] = None
    for j, top in values.items():
        tops[offsets.index(prompt.value_offsets[j])] = top
    return tokens, tops, offsets


def test_the_prompt_ends_with_the_excerpt_all_unknown_after_worked_neurons():
    tokens = ["x", "\t", "\n", " 7"]
    p = echo_prompt("tokens with the digit 7", tokens)
    assert [p.text[o : o + 8] for o in p.value_offsets] == ["unknown\n"] * 4
    target = p.text[p.text.rindex("Activations:") :]
    assert (
        target
        == "Activations:\n<start>\nx\tunknown\n\\t\tunknown\n\\n\tunknown\n 7\tunknown\n<end>\n"
    )
    assert "find tokens with the digit 7\n" in p.text
    # Worked neurons: every one shown, its first tokens unknown and then its real values.
    for _, explanation in WORKED_EXAMPLES:
        assert f"find {explanation}\n" in p.text
    first = p.text[p.text.index("<start>") : p.text.index("<end>")]
    assert first.splitlines()[1:4] == ["\\n\tunknown", "def\tunknown", " parse\t1"]
    with pytest.raises(ValueError, match="at least one token"):
        echo_prompt("x", [])


def test_expected_values_are_read_at_each_unknown():
    p = echo_prompt("commas", ["a", ",", "b"])
    tokens, tops, offsets = echo_of(
        p,
        {
            0: {"0": LOG(0.9), "1": LOG(0.1), " the": LOG(0.2)},  # non-numbers are ignored
            1: {"10": LOG(0.5), "8": LOG(0.5)},
            2: {"unknown": LOG(0.7), "2": LOG(0.3)},  # only the numbers count, renormalised
        },
    )
    sim = read_echo(p, tokens, tops, offsets)
    np.testing.assert_allclose(sim.values, [0.1, 9.0, 2.0])
    assert sim.mode == ALL_AT_ONCE and sim.missing == 0
    # Without offsets they are the running token lengths, and a prefix the endpoint added (a BOS
    # string) is skipped.
    again = read_echo(p, ["<s>", *tokens], [None, *tops], None)
    np.testing.assert_allclose(again.values, sim.values)


def test_a_position_without_numbers_is_missing_and_zero_and_none_at_all_is_malformed():
    p = echo_prompt("commas", ["a", ",", "b"])
    tokens, tops, offsets = echo_of(p, {0: {" x": LOG(0.9)}, 2: {"4": 0.0}})
    sim = read_echo(p, tokens, tops, offsets)
    np.testing.assert_allclose(sim.values, [0.0, 0.0, 4.0])
    assert sim.missing == 2  # position 1 kept the echoed "unknown" as its only alternative
    tokens, tops, offsets = echo_of(p, {})
    with pytest.raises(ValueError, match="no value position"):
        read_echo(p, tokens, tops, offsets)
    with pytest.raises(ValueError, match="offsets"):
        read_echo(p, tokens, tops, offsets[:-1])
    with pytest.raises(ValueError, match="do not spell"):
        read_echo(p, tokens[:-1], tops[:-1], None)


def test_a_tab_merged_with_the_value_and_a_truncated_echo():
    p = echo_prompt("commas", ["a", "b"])
    tokens = split(p.text)
    # Merge every "\t" with the "unknown" after it, as some tokenizers do.
    merged: list[str] = []
    for t in tokens:
        if merged and merged[-1] == "\t":
            merged[-1] += t
        else:
            merged.append(t)
    offsets = [sum(len(t) for t in merged[:i]) for i in range(len(merged))]
    tops: list[dict[str, float] | None] = [{t: 0.0} for t in merged]
    last_two = [i for i, t in enumerate(merged) if t == "\tunknown"][-2:]
    tops[last_two[0]] = {"\t3": 0.0}
    tops[last_two[1]] = {"\t10": LOG(0.5), "\t0": LOG(0.5)}
    np.testing.assert_allclose(read_echo(p, merged, tops, offsets).values, [3.0, 5.0])
    # An echo cut short covers no later value position.
    cut = last_two[1]
    sim = read_echo(p, merged[:cut], tops[:cut], offsets[:cut])
    np.testing.assert_allclose(sim.values, [3.0, 0.0])
    assert sim.missing == 1


def test_an_endpoint_that_echoes_is_scored_all_at_once():
    with fake_openai_server() as (fake, url):
        fake.echo = "ok"
        client, results = run(url)
    for r in results.values():
        assert r.status == "ok" and r.explanation == EXPLANATION
        assert r.simulator_mode == ALL_AT_ONCE and r.score is not None and r.score > 0.95
    assert fake.count("simulate") == 0
    assert fake.count("echo") == 1 + 8  # one probe, then one request per score excerpt
    assert fake.count("explain") == 4


@pytest.mark.parametrize("echo", ["refuse", "ignore"])
def test_without_echo_the_chat_simulator_is_used_and_the_probe_runs_once(echo):
    with fake_openai_server() as (fake, url):
        fake.echo = echo
        client, results = run(url)
    assert {r.simulator_mode for r in results.values()} == {"logprobs"}
    assert all(r.score > 0.95 for r in results.values())
    assert fake.count("echo") == 1 and fake.count("simulate") == 8
    # The chat simulator stops at the line after the excerpt's last token (6 tokens here).
    assert [r["stop"] for r in fake.requests if r["kind"] == "simulate"] == [["\n7\t"]] * 8
    assert client.echoes_prompt_logprobs("simulator-y") is False
    assert fake.count("echo") == 1  # the answer is remembered


def test_a_cached_neuron_keeps_its_mode_and_the_modes_cache_apart(tmp_path):
    path = tmp_path / "cache.jsonl"
    with fake_openai_server() as (fake, url):
        fake.echo = "ok"
        _, chat = run(url, cache=ReplyCache(path), neurons=[0], simulator="chat")
        assert fake.count("echo") == 0 and chat[0].simulator_mode == "logprobs"
        asked = len(fake.requests)
        _, again = run(url, cache=ReplyCache(path), neurons=[0])  # auto, but cached whole
        assert len(fake.requests) == asked and again[0].simulator_mode == "logprobs"
        _, echoed = run(url, cache=ReplyCache(path), neurons=[1])
        assert echoed[1].simulator_mode == ALL_AT_ONCE and fake.count("echo") == 1 + 2
        _, chat = run(url, cache=ReplyCache(path), neurons=[1], simulator="chat")
        assert chat[1].simulator_mode == "logprobs" and fake.count("simulate") == 2 + 2
    assert VERSION in path.read_text()
    with pytest.raises(ValueError, match="simulator must be one of"):
        ClientConfig(base_url="http://x", explainer_model="e", simulator_model="s", simulator="x")


def test_a_transient_error_during_the_probe_means_no_echo_and_no_retry():
    with fake_openai_server() as (fake, url):
        fake.echo = "ok"
        fake.actions.append("500")
        client = ChatClient(config(url, timeout_s=30.0), api_key="k")
        assert client.echoes_prompt_logprobs("m") is False
        assert fake.count("echo") == 1
