"""Explain and score neurons with LLMs over an OpenAI-compatible endpoint (methods.md §3).

Per neuron: the explain excerpts, scaled 0-10 over that block, go into the explanation prompt; the
explainer's reply is the explanation; the simulator then predicts every score excerpt (held out,
never an explain document) token by token; the score is the pooled correlation of the simulated
values with the true activations. The simulator reads the prompt's echoed log-probabilities
(`all_at_once`, OpenAI's scoring simulator) where the endpoint offers them, else a chat reply's
(`simulate`); `simulator_mode` names which.

Explanations and simulations are cached (`ReplyCache`): the explanation under (model, layer,
neuron, prompt version, explainer model, the data's identity: dataset, context length, top-k, and
a hash of the explain excerpts' tokens), a simulation under that key plus the simulator model,
the excerpt's document, start and token hash (and, all at once, that prompt's version), so a
re-run asks the endpoint nothing it already answered, and a changed registry or dataset never
reuses a reply about other text. Only
successes are cached, so a failure is retried by the next run. An explanation that restates one
of the prompt's worked examples is asked for again, and fails after `EXPLAIN_TRIES` replies.

A neuron whose request fails for good (retries exhausted, refused, malformed reply) gets a
record with ``status = "failed: <reason>"``, no score and a `score_status` saying so; the other
neurons carry on. Scores follow `protocol`: pooled, top-only and random-only correlations.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from dd_assets.methods.explain.all_at_once import VERSION as ECHO_VERSION
from dd_assets.methods.explain.all_at_once import echo_prompt, read_echo
from dd_assets.methods.explain.client import Budget, ChatClient, ReplyCache, ReplyError
from dd_assets.methods.explain.prompts import (
    PROMPT_VERSION,
    explanation_messages,
    parse_explanation,
    repeats_worked_example,
    simulation_messages,
)
from dd_assets.methods.explain.protocol import RANDOM_SOURCES, protocol_scores, unscored
from dd_assets.methods.explain.records import TOP, Excerpts, max_activation, normalise
from dd_assets.methods.explain.simulate import (
    ALL_AT_ONCE,
    LOGPROBS,
    SAMPLED,
    Simulation,
    parse_simulation,
)

log = logging.getLogger(__name__)

EXPLAIN_MAX_TOKENS = 60
EXPLAIN_TEMPERATURE = 1.0  # methods.md §3.3; the simulator runs at temperature 0
EXPLAIN_TRIES = 3  # replies asked for before an explanation that repeats a worked example fails
KIND = "llm"


def excerpt_hash(token_ids: np.ndarray, start: np.ndarray | None = None) -> str:
    """A short stable hash of excerpt tokens (and where they start): part of every cache key, so
    a cached reply is only reused for exactly the same text."""
    h = hashlib.sha256(np.ascontiguousarray(token_ids, dtype=np.int64).tobytes())
    if start is not None:
        h.update(np.ascontiguousarray(start, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class NeuronResult:
    neuron: int
    explanation: str
    score: float | None
    score_status: str
    score_top: float | None
    score_random: float | None
    random_source: str
    explainer: str
    scorer: str
    simulator_mode: str
    prompt_version: str
    status: str
    explain_doc_indices: list[int]
    score_doc_indices: list[int]
    kind: str = KIND
    tokens_used: int = 0


def _records(ex: Excerpts, rows: np.ndarray, vocab: Sequence[str]) -> list[tuple[list[str], list]]:
    return [([vocab[t] for t in ex.token_ids[r]], ex.activations[r]) for r in rows]


def simulate(
    client: ChatClient, explanation: str, tokens: list[str], echo: bool
) -> tuple[Simulation, int]:
    """Simulated 0-10 values for one excerpt and the tokens that cost: all at once from the
    echoed prompt where the endpoint can (`echo`), else from a chat reply."""
    model = client.config.simulator_model
    if echo:
        prompt = echo_prompt(explanation, tokens)
        reply = client.prompt_logprobs(prompt.text, model)
        sim = read_echo(prompt, reply.tokens, reply.top_logprobs, reply.text_offset)
        return sim, reply.tokens_used
    # Stop at the line after the last token's: small models go on counting past it.
    reply = client.complete(
        simulation_messages(explanation, tokens), model, max_tokens=8 * len(tokens) + 16,
        logprobs=True, stop=[f"\n{len(tokens) + 1}\t"],
    )  # fmt: skip
    return parse_simulation(reply.text, reply.logprobs, len(tokens)), reply.tokens_used


def choose_echo(client: ChatClient, hits: dict[bool, list]) -> bool:
    """Whether a neuron is simulated all at once, given its cached simulations per choice.

    One mode per neuron, and no request when its simulations are all cached: a neuron cached
    whole in one mode keeps it (all at once first, unless the chat simulator was chosen);
    otherwise the endpoint is probed (once per client) when `simulator` is ``auto``.
    """
    cfg = client.config
    if cfg.simulator == "auto" and all(h is not None for h in hits[True]):
        return True
    if all(h is not None for h in hits[False]):
        return False
    return cfg.simulator == "auto" and client.echoes_prompt_logprobs(cfg.simulator_model)


def explain_neuron(
    client: ChatClient,
    cache: ReplyCache,
    model: str,
    layer: int,
    neuron: int,
    excerpts: Excerpts,
    vocab: Sequence[str],
    data_key: Sequence[str | int] = (),
) -> NeuronResult:
    """Explain one neuron and score the explanation; failures become a 'failed: ...' record.

    `data_key` names the data the excerpts come from (dataset, context length, top-k): with the
    model, prompt version, LLM names and a hash of the excerpt tokens it keys the reply cache.
    """
    cfg = client.config
    rows = np.flatnonzero(excerpts.neuron == neuron)
    explain_rows = rows[excerpts.explain[rows]]
    score_rows = rows[~excerpts.explain[rows]]
    base = dict(
        neuron=neuron,
        explainer=cfg.explainer_model,
        scorer=cfg.simulator_model,
        prompt_version=PROMPT_VERSION,
        explain_doc_indices=excerpts.doc_index[explain_rows].tolist(),
        score_doc_indices=excerpts.doc_index[score_rows].tolist(),
    )
    used = 0
    try:
        if len(explain_rows) == 0:
            raise ReplyError("no explain excerpts")
        key = [
            model, layer, neuron, PROMPT_VERSION, cfg.explainer_model, *data_key,
            excerpt_hash(excerpts.token_ids[explain_rows], excerpts.start[explain_rows]),
        ]  # fmt: skip
        explanation = cache.get(["explanation", *key])
        if explanation is None:
            records = _records(excerpts, explain_rows, vocab)
            scale = max_activation(np.stack([a for _, a in records]))
            scaled = [(t, normalise(a, scale).tolist()) for t, a in records]
            for _ in range(EXPLAIN_TRIES):
                reply = client.complete(
                    explanation_messages(scaled), cfg.explainer_model, EXPLAIN_MAX_TOKENS,
                    temperature=EXPLAIN_TEMPERATURE,
                )  # fmt: skip
                used += reply.tokens_used
                explanation = parse_explanation(reply.text)
                if not repeats_worked_example(explanation):
                    break
                log.info("neuron %d of layer %d: reply repeats a worked example", neuron, layer)
            else:
                raise ReplyError(
                    f"explanation repeats a worked example in {EXPLAIN_TRIES} replies: "
                    f"{explanation!r}"
                )
            cache.put(["explanation", *key], explanation)
        sim_keys = {
            echo: [
                [
                    "simulation",
                    *key,
                    cfg.simulator_model,
                    int(excerpts.doc_index[r]),
                    int(excerpts.start[r]),
                    excerpt_hash(excerpts.token_ids[r]),
                    explanation,
                    *([ECHO_VERSION] if echo else []),
                ]  # fmt: skip
                for r in score_rows
            ]
            for echo in (True, False)
        }
        hits = {echo: [cache.get(k) for k in keys] for echo, keys in sim_keys.items()}
        echo = choose_echo(client, hits)
        true, predicted, modes = [], [], set()
        for r, sim_key, hit in zip(score_rows, sim_keys[echo], hits[echo], strict=True):
            if hit is None:
                tokens = [vocab[t] for t in excerpts.token_ids[r]]
                sim, tokens_used = simulate(client, explanation, tokens, echo)
                used += tokens_used
                hit = {"values": sim.values.round(4).tolist(), "mode": sim.mode}
                cache.put(sim_key, hit)
            true.append(excerpts.activations[r])
            predicted.append(np.asarray(hit["values"], dtype=np.float64))
            modes.add(hit["mode"])
    except (ReplyError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        log.warning("neuron %d of layer %d: %s", neuron, layer, reason)
        return NeuronResult(
            explanation="", score=None, score_status=unscored(f"explanation failed: {reason}"),
            score_top=None, score_random=None, random_source="", simulator_mode="",
            status=f"failed: {reason}", tokens_used=used, **base,
        )  # fmt: skip
    width = excerpts.width
    scores = protocol_scores(
        np.zeros(len(score_rows) * width, dtype=np.int64),
        np.repeat(excerpts.kind[score_rows] != TOP, width),
        np.concatenate(true) if true else np.zeros(0),
        np.concatenate(predicted) if predicted else np.zeros(0),
        1,
        "the simulated activations are constant on the held-out excerpts",
    )
    mode = next(
        (m for m in (SAMPLED, LOGPROBS, ALL_AT_ONCE) if m in modes),
        ALL_AT_ONCE if echo else LOGPROBS,
    )
    random_kinds = sorted({str(k) for k in excerpts.kind[score_rows] if k != TOP})
    return NeuronResult(
        explanation=explanation, score=scores.value("pooled", 0),
        score_status=str(scores.status[0]), score_top=scores.value("top", 0),
        score_random=scores.value("random", 0),
        random_source=",".join(RANDOM_SOURCES.get(k, k) for k in random_kinds),
        simulator_mode=mode, status="ok", tokens_used=used, **base,
    )  # fmt: skip


def explain_neurons(
    client: ChatClient,
    cache: ReplyCache,
    budget: Budget,
    model: str,
    layer: int,
    neurons: Sequence[int],
    excerpts: Excerpts,
    vocab: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    data_key: Sequence[str | int] = (),
) -> list[NeuronResult]:
    """Explain `neurons` concurrently. Neurons not started once the token budget is spent are
    left out of the result (the caller explains them offline)."""
    done: list[NeuronResult] = []

    def one(neuron: int) -> NeuronResult | None:
        if budget.exhausted:
            return None
        result = explain_neuron(client, cache, model, layer, neuron, excerpts, vocab, data_key)
        budget.add(result.tokens_used)
        return result

    with ThreadPoolExecutor(max_workers=client.config.concurrency) as pool:
        for i, result in enumerate(pool.map(one, neurons), 1):
            if result is not None:
                done.append(result)
            if progress is not None:
                progress(i, len(neurons))
    return done
