"""N2G for many neurons of one layer at once: split, prune, saliency, augment, build, evaluate.

Every stage gathers the work of all neurons and runs it through one `ActsFn` call, so the model
sees a few large batches instead of thousands of tiny ones. Token ids are sliced directly (no
re-tokenisation of joined strings), so a pruned prompt is exactly a suffix of the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dd_assets.methods.n2g.augment import Augmenter
from dd_assets.methods.n2g.fidelity import Fidelity, TokenLookup, firing_scores
from dd_assets.methods.n2g.lines import Graph, LineConfig, Sample, build_graph
from dd_assets.methods.n2g.masked_copies import ActsFn, masked_copies
from dd_assets.methods.n2g.tokens import ends_sentence, has_letter, norm_token, search_key
from dd_assets.methods.n2g.trie import END, IGNORE, PredictionTrie


@dataclass(frozen=True)
class N2GConfig:
    train_proportion: float = 0.5
    seed: int = 0
    fire_threshold: float = 0.5
    activation_threshold: float = 0.5
    importance_threshold: float = 0.75
    augment_threshold: float = 0.8  # pivot importance that makes a token worth substituting
    max_augmentations: int = 5  # substitutes per important token
    augmented_saliency: bool = True  # False: augmentations reuse the original's importances
    augment_filter: bool = False  # paper Eq. 4: keep a variant only if it keeps >= 50% of the pivot
    prune_cutoff: int = 30
    prune_step: int = 5
    prune_tolerance: float = -0.5  # accept a prefix if (trunc - full)/full > this
    post_context: int = 5
    normalize_tokens: bool = True
    predict_mode: str = "longest"

    @property
    def lines(self) -> LineConfig:
        return LineConfig(
            self.activation_threshold, self.importance_threshold, self.normalize_tokens
        )


@dataclass(frozen=True)
class Document:
    ids: np.ndarray  # token ids, BOS first
    acts: np.ndarray  # the neuron's activation per position (from the Neuroscope pass)
    doc_index: int


@dataclass(frozen=True)
class NeuronInput:
    neuron: int
    base_max_act: float  # the neuron's max over the dataset: the normaliser
    docs: Sequence[Document]  # top examples, strongest first


@dataclass
class NeuronGraph:
    neuron: int
    graph: Graph
    fidelity: Fidelity
    baseline: Fidelity
    train_docs: list[int]
    test_docs: list[int]
    prompts: int
    samples: int
    activating: dict[str, float] = field(default_factory=dict)  # search key -> max activation
    important: dict[str, float] = field(default_factory=dict)


@dataclass
class _Prompt:
    item: int  # index into the neuron inputs
    ids: np.ndarray
    pivot: int
    scale: float
    importance: np.ndarray | None = None
    acts: np.ndarray | None = None
    variants: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = field(
        default_factory=list
    )  # (ids, importance or None, acts)


def split(n: int, proportion: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle split of n examples into train and test (at least one of each if n >= 2)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_train = int(n * proportion)
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    return sorted(order[:n_train]), sorted(order[n_train:])


def prune_starts(pivot: int, cutoff: int, step: int) -> list[int]:
    """Start positions of the candidate prefixes, shortest first: lengths step, 2*step, ... up to
    `cutoff` tokens, or the whole prefix (BOS included) when it is shorter."""
    starts = []
    for count, start in enumerate(range(pivot, -1, -1), start=1):
        if count > cutoff:
            break
        if count != pivot + 1 and count % step != 0:
            continue
        starts.append(start)
    return starts


def _sentence_end(tokens: Sequence[str], pivot: int) -> int:
    """Index of the last token of the pivot's sentence."""
    for j in range(pivot, len(tokens)):
        if ends_sentence(tokens[j]):
            return j
    return len(tokens) - 1


def _with_bos(ids: np.ndarray, start: int, stop: int) -> np.ndarray:
    body = ids[max(start, 1) : stop]
    return np.concatenate([ids[:1], body])


def _importance(row0: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """importance[k, j] = 1 - act_j(k masked) / act_j (0 where act_j == 0); row 0 = BOS = 0."""
    n = len(row0)
    out = np.zeros((n, n), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(row0 != 0, masked / row0, 1.0)
    out[1:] = 1.0 - ratio
    return out


class N2G:
    def __init__(
        self,
        acts: ActsFn,
        vocab: Sequence[str],
        special_ids: set[int],
        mask_id: int,
        augmenter: Augmenter,
        config: N2GConfig | None = None,
        progress: Callable[[str, int, int], None] = lambda _s, _d, _t: None,
    ) -> None:
        self.acts, self.vocab, self.special = acts, vocab, special_ids
        self.mask_id, self.augmenter = mask_id, augmenter
        self.cfg = config or N2GConfig()
        self.progress = progress

    def tokens(self, ids: np.ndarray) -> list[str]:
        return [self.vocab[int(i)] for i in ids]

    def special_mask(self, ids: np.ndarray) -> np.ndarray:
        return np.isin(ids, list(self.special)) if self.special else np.zeros(len(ids), bool)

    # -- stages -------------------------------------------------------------------------------

    def _prune(self, inputs: Sequence[NeuronInput], splits) -> list[_Prompt]:
        """Shortest left context that keeps the pivot the argmax at >= 50% of its activation."""
        cfg = self.cfg
        pending = []  # (item, doc, pivot, starts, sentence_end)
        for item, (inp, (train, _)) in enumerate(zip(inputs, splits, strict=True)):
            for d in train:
                doc = inp.docs[d]
                body = doc.acts[1:]
                if body.size == 0 or body.max() <= 0:
                    continue
                pivot = int(body.argmax()) + 1
                starts = prune_starts(pivot, cfg.prune_cutoff, cfg.prune_step)
                end = _sentence_end(self.tokens(doc.ids), pivot)
                pending.append((item, doc, pivot, starts, end))
        prompts: list[_Prompt] = []
        rounds = max((len(p[3]) for p in pending), default=0)
        for r in range(rounds):
            live = [p for p in pending if r < len(p[3])]
            seqs = [_with_bos(doc.ids, starts[r], pivot + 1) for _, doc, pivot, starts, _ in live]
            outs = self.acts(seqs, np.asarray([inputs[p[0]].neuron for p in live]))
            still = []
            for (item, doc, pivot, starts, end), seq, a in zip(live, seqs, outs, strict=True):
                init_max = float(doc.acts[pivot])
                trunc = float(a[-1])
                body = a[1:]
                is_max = body.size > 0 and int(body.argmax()) == len(body) - 1
                ok = is_max and (trunc - init_max) / init_max > cfg.prune_tolerance
                if ok or r == len(starts) - 1:
                    # Scale by the truncated prompt's maximum, as the reference method does: when
                    # no prefix kept the pivot the argmax, the pivot's own (small) activation
                    # would blow the prompt up far past the neuron's maximum.
                    trunc_max = float(body.max()) if body.size else 0.0
                    if trunc_max > 0:
                        post = doc.ids[pivot + 1 : min(pivot + 1 + cfg.post_context, end + 1)]
                        ids = np.concatenate([seq, post])
                        prompts.append(_Prompt(item, ids, len(seq) - 1, init_max / trunc_max))
                else:
                    still.append((item, doc, pivot, starts, end))
            pending = still
            self.progress("prune", r + 1, rounds)
        return prompts

    def _saliency(self, seqs: list[np.ndarray], neurons: np.ndarray) -> list[tuple]:
        """(importance matrix, unmasked activations) per sequence, from one batched call."""
        shared = getattr(self.acts, "masked_copies", None)
        if shared is not None:
            copies = shared(seqs, neurons, self.mask_id)
        else:
            copies = masked_copies(self.acts, seqs, neurons, self.mask_id)
        return [(_importance(a0, masked), a0) for a0, masked in copies]

    def _augment(self, inputs: Sequence[NeuronInput], prompts: list[_Prompt]) -> None:
        cfg = self.cfg
        requests = []  # (prompt index, position)
        for p_i, p in enumerate(prompts):
            assert p.importance is not None
            tokens = self.tokens(p.ids)
            pivot_imp = p.importance[:, p.pivot]
            keys = {
                norm_token(tokens[k], cfg.normalize_tokens)
                for k in range(1, p.pivot + 1)
                if pivot_imp[k] >= cfg.augment_threshold
            }
            for k in range(1, p.pivot + 1):
                if (
                    int(p.ids[k]) not in self.special
                    and has_letter(tokens[k])
                    and norm_token(tokens[k], cfg.normalize_tokens) in keys
                ):
                    requests.append((p_i, k))
        if not requests or cfg.max_augmentations <= 0:
            return
        subs = self.augmenter.substitutes(
            [prompts[p].ids for p, _ in requests], [k for _, k in requests], cfg.max_augmentations
        )
        variants: list[tuple[int, np.ndarray]] = []
        for (p_i, k), cands in zip(requests, subs, strict=True):
            for c in cands:
                ids = prompts[p_i].ids.copy()
                ids[k] = c
                variants.append((p_i, ids))
        if not variants:
            return
        neurons = np.asarray([inputs[prompts[p].item].neuron for p, _ in variants])
        if cfg.augmented_saliency:
            done = self._saliency([ids for _, ids in variants], neurons)
            for (p_i, ids), (imp, a0) in zip(variants, done, strict=True):
                prompts[p_i].variants.append((ids, imp, a0))
        else:
            outs = self.acts([ids for _, ids in variants], neurons)
            for (p_i, ids), a0 in zip(variants, outs, strict=True):
                prompts[p_i].variants.append((ids, None, a0))

    def _sample(self, p: _Prompt, ids, importance, acts, base: float) -> Sample:
        norm = np.round(acts * p.scale / base, 3)
        return Sample(self.tokens(ids), self.special_mask(ids), norm, importance)

    # -- the whole method ---------------------------------------------------------------------

    def run(self, inputs: Sequence[NeuronInput]) -> list[NeuronGraph]:
        cfg = self.cfg
        splits = [split(len(inp.docs), cfg.train_proportion, cfg.seed) for inp in inputs]
        prompts = self._prune(inputs, splits)
        neurons = np.asarray([inputs[p.item].neuron for p in prompts], dtype=np.int64)
        for p, (imp, a0) in zip(
            prompts, self._saliency([p.ids for p in prompts], neurons), strict=True
        ):
            p.importance, p.acts = imp, a0
        self.progress("saliency", 1, 1)
        self._augment(inputs, prompts)
        self.progress("augmentation", 1, 1)
        by_item: dict[int, list[_Prompt]] = {}
        for p in prompts:
            by_item.setdefault(p.item, []).append(p)
        results = []
        for item, inp in enumerate(inputs):
            base = inp.base_max_act if inp.base_max_act > 0 else 1.0
            sets = []
            n_samples = 0
            for p in by_item.get(item, []):
                original = self._sample(p, p.ids, p.importance, p.acts, base)
                samples = [original]
                for ids, imp, a0 in p.variants:
                    if cfg.augment_filter and a0[p.pivot] < 0.5 * p.acts[p.pivot]:
                        continue
                    samples.append(
                        self._sample(p, ids, imp if imp is not None else p.importance, a0, base)
                    )
                n_samples += len(samples)
                sets.append(samples)
            graph = build_graph(sets, cfg.lines)
            train, test = splits[item]
            fid, baseline = self.evaluate(graph.prediction, inp, train, test, base)
            activating, important = store_tokens(graph.prediction)
            results.append(
                NeuronGraph(
                    neuron=inp.neuron,
                    graph=graph,
                    fidelity=fid,
                    baseline=baseline,
                    train_docs=[inp.docs[d].doc_index for d in train],
                    test_docs=[inp.docs[d].doc_index for d in test],
                    prompts=len(sets),
                    samples=n_samples,
                    activating=activating,
                    important=important,
                )
            )
        return results

    def evaluate(
        self, trie: PredictionTrie, inp: NeuronInput, train, test, base: float
    ) -> tuple[Fidelity, Fidelity]:
        """Graph and token-lookup baseline on the held-out examples (BOS positions excluded)."""
        cfg = self.cfg
        lookup = TokenLookup(cfg.normalize_tokens).fit(
            [
                (
                    self.tokens(inp.docs[d].ids),
                    inp.docs[d].acts / base,
                    ~self.special_mask(inp.docs[d].ids),
                )
                for d in train
            ]
        )
        real, pred, base_pred = [], [], []
        for d in test:
            doc = inp.docs[d]
            tokens = self.tokens(doc.ids)
            keep = ~self.special_mask(doc.ids)
            real.append((doc.acts / base)[keep])
            pred.append(trie.predict(tokens, cfg.predict_mode)[keep])
            base_pred.append(lookup.predict(tokens)[keep])
        r = _cat(real)
        return (
            firing_scores(r, _cat(pred), cfg.fire_threshold),
            firing_scores(r, _cat(base_pred), cfg.fire_threshold),
        )


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def store_tokens(trie: PredictionTrie) -> tuple[dict[str, float], dict[str, float]]:
    """The neuron-store entries of a graph: search key -> max activation, per kind.

    A node is "activating" if its own token fires (all activating tokens and context tokens that
    fire themselves), else "important".
    """
    activating: dict[str, float] = {}
    important: dict[str, float] = {}
    for node in trie.nodes():
        e = node.element
        if e.token in (IGNORE, END):
            continue
        key = search_key(e.token)
        if not key:
            continue
        target = activating if e.activator else important
        target[key] = max(target.get(key, float("-inf")), round(float(e.activation), 4))
    return activating, important
