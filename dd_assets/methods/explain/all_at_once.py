"""OpenAI's "all at once" simulator, for completions endpoints that echo prompt logprobs (§3.4).

One request per excerpt, with nothing generated: the prompt holds a few worked neurons, then the
explanation and the excerpt as ``token<TAB>unknown`` lines. The request asks the endpoint to echo
the prompt with the top log-probabilities at every position (``echo=True, logprobs=k,
max_tokens=0``); the simulated activation of a token is the expected value over the numbers 0-10
offered at the position of its ``unknown``::

    EV = sum(v * p_v) / sum(p_v)   over candidates v in 0..10, p_v = exp(logprob)

The worked neurons show ``unknown`` for their first tokens and real values after that, so the
model has learnt that a number may follow a tab where the prompt happens to say ``unknown``. This
is the simulator OpenAI scored with; it needs one forward pass per excerpt and no generation, so
it is the cheapest mode where an endpoint offers it (vLLM does; llama.cpp's server ignores
``echo`` and returns no prompt log-probabilities). `simulator_mode` is ``"all-at-once"``.

The prompt is plain text in our own words (not OpenAI's); `VERSION` is part of every cached
simulation's key, so bump it when the prompt changes.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dd_assets.methods.explain.prompts import PREFIX, WORKED_EXAMPLES
from dd_assets.methods.explain.records import format_block
from dd_assets.methods.explain.simulate import ALL_AT_ONCE, Simulation, expected_value

VERSION = "dd-simulate-all-at-once-v1"
REVEAL_AFTER = 2  # worked examples show "unknown" for this many tokens, then their values

INTRO = (
    "Below are neurons of a language model, each with a description of what it responds to and "
    "texts, one token per line. After each token and a tab comes the neuron's activation on that "
    "token: an integer from 0 (silent) to 10 (strongest response), or unknown where it has not "
    "been recorded yet. Most activations are 0."
)


@dataclass(frozen=True)
class EchoPrompt:
    """A simulation prompt and where, in its text, each excerpt token's ``unknown`` begins."""

    text: str
    value_offsets: list[int]


def _neuron(index: int, explanation: str) -> str:
    return (
        f"\n\nNeuron {index}\nExplanation of neuron {index}: {PREFIX} {explanation}\nActivations:"
    )


def echo_prompt(explanation: str, tokens: Sequence[str]) -> EchoPrompt:
    """The all-at-once prompt for one excerpt; the excerpt's block comes last, all ``unknown``.

    >>> p = echo_prompt("commas", [",", " x"])
    >>> [p.text[o : o + 7] for o in p.value_offsets]
    ['unknown', 'unknown']
    """
    if not tokens:
        raise ValueError("an all-at-once simulation needs at least one token")
    text = INTRO
    for i, (records, example) in enumerate(WORKED_EXAMPLES, 1):
        reveal = [min(REVEAL_AFTER, len(t) - 1) for t, _ in records]
        text += _neuron(i, example) + format_block(records, start_indices=reveal)
    text += _neuron(len(WORKED_EXAMPLES) + 1, explanation)
    block = format_block([(list(tokens), None)])
    start = len(text)
    text += block
    # Tokens are escaped (`display_token`), so each line of the block has exactly one tab.
    offsets = [start + i + 1 for i, ch in enumerate(block) if ch == "\t"]
    if len(offsets) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(offsets)} value positions")
    return EchoPrompt(text=text, value_offsets=offsets)


def read_echo(
    prompt: EchoPrompt,
    tokens: Sequence[str],
    top_logprobs: Sequence[dict[str, float] | None],
    text_offset: Sequence[int] | None = None,
) -> Simulation:
    """Simulated values from an echoed prompt: the echoed tokens, their top alternatives, and
    (where the endpoint gives it) each token's character offset in the prompt.

    Without offsets they are the running sum of the token lengths; a prefix the endpoint added
    (a BOS string) is skipped when the echo ends with the prompt. A value whose position starts
    inside a token (a tokenizer that merged the tab and the value) takes that token's
    alternatives, stripped of whitespace; a position with no numeric alternative counts as
    missing and is simulated as 0, as OpenAI's simulator does. Raises ValueError when no value
    position has one (an endpoint that echoed something else).
    """
    if len(tokens) != len(top_logprobs):
        raise ValueError(f"{len(tokens)} echoed tokens but {len(top_logprobs)} logprob entries")
    if text_offset is None:
        echoed = "".join(tokens)
        if not echoed.endswith(prompt.text):
            raise ValueError("the echoed tokens do not spell the prompt and carry no offsets")
        shift = len(echoed) - len(prompt.text)
        starts = list(np.cumsum([0, *(len(t) for t in tokens[:-1])]) - shift)
    else:
        if len(text_offset) != len(tokens):
            raise ValueError(f"{len(tokens)} echoed tokens but {len(text_offset)} offsets")
        starts = list(text_offset)
    values = np.zeros(len(prompt.value_offsets), dtype=np.float64)
    seen = np.zeros(len(prompt.value_offsets), dtype=bool)
    for j, offset in enumerate(prompt.value_offsets):
        i = bisect.bisect_right(starts, offset) - 1
        covers = i >= 0 and offset < starts[i] + max(len(tokens[i]), 1)
        top = top_logprobs[i] if covers else None  # a truncated echo covers no later value
        ev = expected_value(top) if top else None
        if ev is not None:
            values[j], seen[j] = ev, True
    if not seen.any():
        raise ValueError("malformed echo: no value position has numeric log-probabilities")
    return Simulation(values=values, mode=ALL_AT_ONCE, missing=int((~seen).sum()))
