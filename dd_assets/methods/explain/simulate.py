"""Simulated activations from a chat model's reply (methods.md §3.4, adapted to chat completions).

The simulator is asked to answer one line per excerpt token, ``<index><TAB><value>`` with a value
0-10 (see `prompts.simulation_messages`). With log-probabilities (``logprobs=True,
top_logprobs=k``) the simulated activation of a token is the expected value over the digit
tokens offered at the position right after the tab::

    EV = sum(v * p_v) / sum(p_v)   over candidates v in 0..10, p_v = exp(logprob)

Candidates that are not a number 0-10 (" the", "unknown") are ignored and the rest renormalised.
A tokenizer that splits "10" into "1", "0" gives the probability of "1" to 1 (a slight
underestimate of the top value; OpenAI's tokenizers have "10" as one token).

Without log-probabilities (an endpoint that ignores or rejects them) the sampled values are
parsed instead and the score is recorded as coming from mode ``"sampled"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

LOGPROBS, SAMPLED = "logprobs", "sampled"
ALL_AT_ONCE = "all-at-once"  # `all_at_once`: read from the prompt's echoed log-probabilities
_LINE = re.compile(r"^\s*(\d+)\s*\t\s*(\S+)")
_NUMBER = re.compile(r"^(?:10|[0-9])$")


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token of a reply and the top alternatives at its position."""

    token: str
    top: dict[str, float]  # candidate token -> log-probability


@dataclass(frozen=True)
class Simulation:
    values: np.ndarray  # float64 [pos], simulated 0-10 activation per excerpt token
    mode: str  # LOGPROBS, SAMPLED or ALL_AT_ONCE
    missing: int  # tokens the reply gave no value for (simulated as 0)


def expected_value(top_logprobs: dict[str, float]) -> float | None:
    """Expected 0-10 value over the numeric candidates; None if no candidate is a number.

    >>> lp = {"0": math.log(0.7), "1": math.log(0.2), "10": math.log(0.05), " the": math.log(0.05)}
    >>> round(expected_value(lp), 4)
    0.7368
    """
    weights: dict[int, float] = {}
    for token, logprob in top_logprobs.items():
        text = token.strip()
        if _NUMBER.match(text) and logprob is not None and math.isfinite(logprob):
            weights[int(text)] = weights.get(int(text), 0.0) + math.exp(logprob)
    total = sum(weights.values())
    if total <= 0:
        return None
    return sum(v * p for v, p in weights.items()) / total


def _sampled_value(text: str) -> float:
    digits = re.match(r"\d+", text)
    return float(min(int(digits.group(0)), 10)) if digits else 0.0


def parse_simulation(text: str, logprobs: list[TokenLogprob] | None, n_tokens: int) -> Simulation:
    """Per-token simulated values of a reply for an excerpt of `n_tokens` tokens.

    Lines are matched to excerpt tokens by their 1-based index, so a skipped or repeated line
    cannot shift the others. With `logprobs`, the value of a line is the expected value at the
    first token generated after its tab; without, it is the sampled integer.
    Raises ValueError when the reply holds no usable line at all (a malformed reply).
    """
    values = np.zeros(n_tokens, dtype=np.float64)
    seen = np.zeros(n_tokens, dtype=bool)
    mode = SAMPLED
    if logprobs:
        mode = LOGPROBS
        line = ""
        waiting: int | None = None  # index of the line whose value token comes next
        for tl in logprobs:
            if waiting is not None and tl.token.strip():
                ev = expected_value(tl.top)
                if ev is None:
                    ev = _sampled_value(tl.token.strip())
                if 0 <= waiting < n_tokens and not seen[waiting]:
                    values[waiting], seen[waiting] = ev, True
                waiting = None
            for ch in tl.token:
                if ch == "\n":
                    line = ""
                    waiting = None
                    continue
                line += ch
                if ch == "\t":
                    head = line[:-1].strip()
                    waiting = int(head) - 1 if head.isdigit() else None
            # A token like "\t7" carries the tab and the value together: its top alternatives
            # are still the distribution over the value, so take them.
            if waiting is not None and not tl.token.endswith("\t"):
                tail = tl.token.rsplit("\t", 1)[-1].strip()
                if tail:
                    ev = expected_value(tl.top)
                    if ev is None:
                        ev = _sampled_value(tail)
                    if 0 <= waiting < n_tokens and not seen[waiting]:
                        values[waiting], seen[waiting] = ev, True
                    waiting = None
    if not seen.any():
        mode = SAMPLED
        for raw in text.splitlines():
            m = _LINE.match(raw)
            if m:
                i = int(m.group(1)) - 1
                if 0 <= i < n_tokens and not seen[i]:
                    values[i], seen[i] = _sampled_value(m.group(2)), True
    if n_tokens and not seen.any():
        raise ValueError("malformed simulation reply: no '<index><TAB><value>' line")
    return Simulation(values=values, mode=mode, missing=int(n_tokens - seen.sum()))
