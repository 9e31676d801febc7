"""Chat prompts for the explainer and the simulator, in our own words (structure: methods.md §3.3-3.4).

Explainer: a system message describing the task and the ``token<TAB>value`` format (values 0-10,
scaled per block), three worked examples written for this project as user/assistant pairs, then
the target neuron's explain excerpts. A reply that restates a worked example is not an
explanation of the neuron (`repeats_worked_example`); the caller retries or rejects it. When few of the values are non-zero the same block is repeated with the zeros left out.
The reply completes "the main thing this neuron does is find"; we store it without that prefix
and without a final period.

Simulator: a system message, one worked example, then the explanation and the excerpt as numbered
tokens; the model answers one ``<index><TAB><value>`` line per token. Numbering keeps the answer
aligned with the excerpt even when a token is hard to echo (whitespace, odd bytes).

Bump `PROMPT_VERSION` whenever a prompt's wording or structure changes: it is part of the cache key
and stored with every explanation.
"""

from __future__ import annotations

import re

from dd_assets.methods.explain.records import display_token, format_block, non_zero_proportion

PROMPT_VERSION = "dd-explain-v2"
PREFIX = "the main thing this neuron does is find"
REPEAT_OVERLAP = 0.75  # shared words / all words at which a reply counts as a worked example
SPARSE = 0.2  # below this share of non-zero values the block is repeated without zeros

Message = dict[str, str]

EXPLAINER_SYSTEM = (
    "You are helping to interpret the neurons of a language model. Each neuron responds to some "
    "feature of the text it reads. You will see short excerpts of text, one token per line, each "
    "followed by a tab and the neuron's activation on that token, scaled to an integer from 0 to "
    "10: 0 means the neuron is silent, larger numbers mean it responds more strongly. Work out "
    "what the tokens with large values have in common, taking their surrounding text into "
    "account, and describe it in one short phrase. Describe the pattern rather than listing the "
    "tokens one by one."
)

# Three made-up neurons, written for this project's prompt (Python documentation is what the
# default dataset holds); OpenAI's explainer also shows three. None is a real neuron.
WORKED_EXAMPLES: list[tuple[list[tuple[list[str], list[int]]], str]] = [
    (
        [
            (["\n", "def", " parse", "_", "args", "(", "argv", "):"], [0, 10, 1, 0, 0, 0, 0, 0]),
            (
                ["class", " Foo", ":", "\n", "    ", "def", " run", "(self"],
                [0, 0, 0, 0, 0, 9, 2, 0],
            ),
        ],
        "the keyword def where a function definition starts",
    ),
    (
        [
            (["Python", " 3", ".", "11", " or", " 3", ".", "12"], [0, 0, 0, 8, 0, 0, 0, 9]),
            (["requires", " numpy", " >=", " 1", ".", "26"], [0, 0, 0, 0, 0, 10]),
        ],
        "the minor number of a version, after its dot",
    ),
    (
        [
            (["print", '("', "hello", " world", '")'], [0, 1, 7, 8, 0]),
            (["raise", " ValueError", '("', "bad", " input", '")'], [0, 0, 0, 10, 6, 0]),
        ],
        "words inside string literals in code",
    ),
]

SIMULATOR_SYSTEM = (
    "You are predicting how a neuron of a language model responds to text, given a description of "
    "what the neuron looks for. You will get the description and an excerpt as numbered tokens, "
    "one per line. Answer with exactly one line per token, in order, of the form "
    "<number><TAB><activation>, where activation is an integer from 0 (silent) to 10 (strongest "
    "response). Most tokens get 0. Write nothing else."
)

_EXAMPLE_SIMULATE = (
    "opening brackets in program code",
    ["x", " =", " f", "(", "a", "[", "0", "])"],
    [0, 0, 0, 9, 0, 8, 0, 1],
)


def _neuron_block(index: int, records: list[tuple[list[str], list[int]]]) -> str:
    text = f"\n\nNeuron {index}\nActivations:" + format_block(records)
    if non_zero_proportion([v for _, v in records]) < SPARSE:
        text += "\nThe same activations with the zeros left out:" + format_block(
            records, omit_zeros=True
        )
    return text + f"\nExplanation of neuron {index}: {PREFIX}"


def explanation_messages(records: list[tuple[list[str], list[int]]]) -> list[Message]:
    """Messages asking for an explanation of one neuron from its (tokens, 0-10 values) excerpts."""
    if not records:
        raise ValueError("an explanation needs at least one excerpt")
    messages = [{"role": "system", "content": EXPLAINER_SYSTEM}]
    for i, (example_records, example_explanation) in enumerate(WORKED_EXAMPLES, 1):
        messages.append({"role": "user", "content": _neuron_block(i, example_records)})
        messages.append({"role": "assistant", "content": f" {example_explanation}."})
    messages.append({"role": "user", "content": _neuron_block(len(WORKED_EXAMPLES) + 1, records)})
    return messages


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def repeats_worked_example(explanation: str) -> bool:
    """True when an explanation restates one of the prompt's worked examples (a small model's
    favourite failure: it copies the example instead of reading the neuron's excerpts).

    >>> repeats_worked_example("Words inside string literals in code.")
    True
    >>> repeats_worked_example("closing brackets of function calls")
    False
    >>> repeats_worked_example("the keyword def")  # shares words, but is its own reading
    False
    """
    words = _words(explanation)
    mine = set(words.split())
    for _, example in WORKED_EXAMPLES:
        theirs = set(_words(example).split())
        if _words(example) in words or len(mine & theirs) >= REPEAT_OVERLAP * len(mine | theirs):
            return True
    return False


def parse_explanation(text: str | None) -> str:
    """The explanation in a reply: first line, without the prompt's prefix or a final period.

    Raises ValueError for an empty reply.
    """
    line = (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
    if line.lower().startswith(PREFIX):
        line = line[len(PREFIX) :].strip()
    line = line.strip().strip('"').strip()
    while line.endswith("."):
        line = line[:-1].rstrip()
    if not line:
        raise ValueError("malformed explanation reply: empty")
    return line


def _numbered(tokens: list[str]) -> str:
    return "\n".join(f"{i}\t{display_token(t)}" for i, t in enumerate(tokens, 1))


def _simulate_request(explanation: str, tokens: list[str]) -> str:
    return (
        f"Description: {PREFIX} {explanation}.\n"
        f"Tokens:\n{_numbered(tokens)}\n"
        f"Activations for tokens 1 to {len(tokens)}:"
    )


def simulation_messages(explanation: str, tokens: list[str]) -> list[Message]:
    """Messages asking the simulator for one 0-10 value per token of one excerpt."""
    ex_explanation, ex_tokens, ex_values = _EXAMPLE_SIMULATE
    answer = "\n".join(f"{i}\t{v}" for i, v in enumerate(ex_values, 1))
    return [
        {"role": "system", "content": SIMULATOR_SYSTEM},
        {"role": "user", "content": _simulate_request(ex_explanation, ex_tokens)},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": _simulate_request(explanation, tokens)},
    ]
