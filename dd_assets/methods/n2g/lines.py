"""Turn saliency samples into N2G lines and build a neuron's tries from them.

A sample is one prompt (a pruned example or an augmentation of it) with its token strings, its
normalised activations (fraction of the neuron's dataset max) and its importance matrix
``importance[k, j] = 1 - act_j(k masked) / act_j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dd_assets.methods.n2g.tokens import norm_token
from dd_assets.methods.n2g.trie import END, IGNORE, Element, PredictionTrie, VisualTrie


@dataclass(frozen=True)
class Sample:
    tokens: Sequence[str]
    special: np.ndarray  # bool per position: BOS/EOS, never a node
    norm_acts: np.ndarray  # float per position
    importance: np.ndarray  # [L, L]


@dataclass(frozen=True)
class LineConfig:
    activation_threshold: float = 0.5
    importance_threshold: float = 0.75
    normalize_tokens: bool = True


def important_sets(sample: Sample, cfg: LineConfig) -> list[set[int]]:
    """For each position j, the earlier non-special positions whose masking matters for j."""
    imp = sample.importance
    out = []
    for j in range(len(sample.tokens)):
        col = imp[: j + 1, j] > cfg.importance_threshold
        out.append({int(k) for k in np.flatnonzero(col) if not sample.special[k]})
    return out


def sample_lines(
    sample: Sample, reference_sets: list[set[int]], cfg: LineConfig
) -> list[list[Element]]:
    """Lines of every activating token of `sample` (see the module docstring of `trie`).

    `reference_sets` come from the original (unaugmented) sample and are reused for its
    augmentations, whose positions line up with it.
    """
    lines = []
    acts, imp, tokens = sample.norm_acts, sample.importance, sample.tokens
    for i in np.flatnonzero(acts > cfg.activation_threshold):
        i = int(i)
        if sample.special[i]:
            continue
        ref = reference_sets[min(i, len(reference_sets) - 1)] if reference_sets else set()
        line: list[Element] = []
        last = 0
        for s in range(i, -1, -1):
            if sample.special[s]:
                continue
            importance = float(imp[s, i])
            important = importance > cfg.importance_threshold or s in ref
            ignore = not important and s != i
            token = IGNORE if ignore else norm_token(tokens[s], cfg.normalize_tokens)
            line.append(
                Element(
                    token=token,
                    importance=importance,
                    activation=float(acts[s]),
                    important=important,
                    activator=bool(acts[s] > cfg.activation_threshold),
                )
            )
            if not ignore:
                last = len(line) - 1
        line = line[: last + 1]
        line.append(Element(token=END, activation=float(acts[i])))
        lines.append(line)
    return lines


@dataclass
class Graph:
    prediction: PredictionTrie
    visual: VisualTrie
    num_lines: int


def build_graph(sample_sets: Sequence[Sequence[Sample]], cfg: LineConfig) -> Graph:
    """Both tries of a neuron from its sample sets ([original, augmentation, ...] per prompt)."""
    prediction = PredictionTrie(cfg.normalize_tokens)
    visual = VisualTrie()
    count = 0
    for samples in sample_sets:
        if not samples:
            continue
        ref = important_sets(samples[0], cfg)
        for sample in samples:
            for line in sample_lines(sample, ref, cfg):
                prediction.add_line(line)
                visual.add_line(line)
                count += 1
    prediction.merge_ignores()
    return Graph(prediction, visual, count)
