"""N2G's two tries: the prediction trie (the neuron simulator) and the visual trie (the picture).

A *line* is one activating token followed by its context read backwards: important tokens as
themselves, unimportant ones in between as a wildcard, and a final END element that carries the
activation to predict. Inserting lines into a trie keyed by token shares common suffixes of the
contexts; the first insertion of a node keeps its element (importance, activation), as in the
reference implementation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from dd_assets.methods.n2g.tokens import norm_token

# Keys that cannot collide with a token string (tokens never start with a NUL byte).
IGNORE = "\x00ignore"
END = "\x00end"

PredictMode = Literal["longest", "max"]


@dataclass(frozen=True, slots=True)
class Element:
    """One position of a line: a context token, a wildcard, or the END marker."""

    token: str
    importance: float = 0.0
    activation: float = 0.0
    important: bool = False
    activator: bool = False
    is_end: bool = False

    @property
    def kind(self) -> str:
        return "ignore" if self.token == IGNORE else "end" if self.token == END else "token"


class Node:
    __slots__ = ("children", "depth", "element")

    def __init__(self, element: Element | None, depth: int) -> None:
        self.element = element
        self.depth = depth
        self.children: dict[str, Node] = {}

    def paths(self) -> Iterable[list[Node]]:
        """Every path from this node down to a leaf, this node first."""
        stack: list[list[Node]] = [[self]]
        while stack:
            path = stack.pop()
            last = path[-1]
            if not last.children:
                yield path
            for child in last.children.values():
                stack.append([*path, child])


class Trie:
    """A token trie rooted at a bare ROOT node; depth 0 = the activating tokens."""

    def __init__(self) -> None:
        self.root = Node(None, -1)

    def insert(self, elements: Sequence[Element], below: Node | None = None) -> Node:
        """Walk/extend the trie along `elements`; an existing node keeps its first element."""
        node = below or self.root
        for element in elements:
            child = node.children.get(element.token)
            if child is None:
                child = Node(element, node.depth + 1)
                node.children[element.token] = child
            node = child
        return node

    def nodes(self) -> Iterable[Node]:
        """Breadth-first, root excluded."""
        queue = deque(self.root.children.values())
        while queue:
            node = queue.popleft()
            yield node
            queue.extend(node.children.values())

    # -- serialisation ------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Nested plain data: {"children": [{token, kind, importance, activation, ...}]}."""

        def encode(node: Node) -> dict:
            e = node.element
            assert e is not None
            out: dict = {"token": e.token if e.kind == "token" else None, "kind": e.kind}
            if e.kind == "end":
                out["activation"] = round(e.activation, 4)
                return out
            out.update(
                importance=round(e.importance, 4),
                activation=round(e.activation, 4),
                important=e.important,
                activator=e.activator,
                is_end=e.is_end,
                children=[encode(c) for c in node.children.values()],
            )
            return out

        return {"children": [encode(c) for c in self.root.children.values()]}

    @classmethod
    def from_json(cls, data: dict) -> Trie:
        trie = cls()

        def decode(parent: Node, item: dict) -> None:
            kind = item["kind"]
            token = IGNORE if kind == "ignore" else END if kind == "end" else item["token"]
            element = Element(
                token=token,
                importance=item.get("importance", 0.0),
                activation=item.get("activation", 0.0),
                important=item.get("important", False),
                activator=item.get("activator", False),
                is_end=item.get("is_end", False),
            )
            node = Node(element, parent.depth + 1)
            parent.children[token] = node
            for child in item.get("children", ()):
                decode(node, child)

        for item in data.get("children", ()):
            decode(trie.root, item)
        return trie


class PredictionTrie(Trie):
    """The simulator: predicts a neuron's normalised activation at each token of a text."""

    def __init__(self, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize

    def add_line(self, line: Sequence[Element]) -> None:
        self.insert(line)

    def merge_ignores(self) -> None:
        """Give each wildcard the continuations of its specific siblings.

        Where a node has both a wildcard child W and specific children C, every path below C
        (minus C itself) is also inserted below W, and C is dropped unless a line ends at C.
        A specific sibling therefore survives only where it completes a path by itself.
        """
        queue = deque([self.root])
        while queue:
            node = queue.popleft()
            wildcard = node.children.get(IGNORE)
            if wildcard is not None:
                for key, child in list(node.children.items()):
                    if key == IGNORE:
                        continue
                    for path in child.paths():
                        if len(path) <= 1 or (len(path) == 2 and path[1].element.token == END):
                            continue
                        self.insert([n.element for n in path[1:]], below=wildcard)
                    if END not in child.children:
                        del node.children[key]
            queue.extend(c for c in node.children.values() if c.element.token != END)

    def search(self, prefix: Sequence[str], mode: PredictMode = "longest") -> float:
        """Predicted activation of the last token of `prefix`, from its context read backwards."""
        node = self.root
        found = 0.0
        for i in range(len(prefix) - 1, -1, -1):
            token = norm_token(prefix[i], self.normalize)
            child = node.children.get(token)
            if child is None:
                child = node.children.get(IGNORE)
                if child is None:
                    break
            node = child
            if i == len(prefix) - 1 and not node.element.activator:
                break
            end = node.children.get(END)
            if end is not None:
                found = (
                    end.element.activation
                    if mode == "longest"
                    else max(found, end.element.activation)
                )
        return found

    def predict(self, tokens: Sequence[str], mode: PredictMode = "longest") -> np.ndarray:
        """One predicted normalised activation per token (a fraction of the neuron's max)."""
        out = np.zeros(len(tokens), dtype=np.float32)
        first = self.root.children
        for j in range(len(tokens)):
            # Fast reject: most tokens start no path.
            if norm_token(tokens[j], self.normalize) in first:
                out[j] = self.search(tokens[: j + 1], mode)
        return out

    @classmethod
    def from_json(cls, data: dict, normalize: bool = True) -> PredictionTrie:
        trie = super().from_json(data)
        out = cls(normalize)
        out.root = trie.root
        return out


class VisualTrie(Trie):
    """The picture: lines without wildcards and END markers, the last real token marked is_end."""

    def add_line(self, line: Sequence[Element]) -> None:
        real = [e for e in line if e.token not in (IGNORE, END)]
        if not real:
            return
        real[-1] = replace(real[-1], is_end=True)
        node = self.insert(real[:-1])
        last = node.children.get(real[-1].token)
        if last is None:
            self.insert(real[-1:], below=node)
        elif not last.element.is_end:
            last.element = replace(last.element, is_end=True)
