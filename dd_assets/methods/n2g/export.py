"""Pictures of a neuron's visual trie: Graphviz DOT, DeepDecipher's compact JSON, and an SVG.

Nodes are collapsed by (depth, token): one box per distinct token per distance from the activating
token. Activating tokens (depth 0) are shaded red by activation, context tokens blue by
importance, both rescaled so that values at the line-creation thresholds are pale.
"""

from __future__ import annotations

import html
import json
from collections import deque
from dataclasses import dataclass, field

from dd_assets.methods.n2g.trie import Node, VisualTrie

ACT_FLOOR = 0.3  # max(0, activation_threshold - 0.2)
IMP_FLOOR = 0.55  # max(0.1, importance_threshold - 0.2)


@dataclass
class GraphNode:
    index: int
    depth: int
    token: str
    shade: float  # 0..1: how strongly to colour the box
    is_end: bool
    children: list[int] = field(default_factory=list)

    @property
    def green(self) -> int:
        return min(255, max(0, 255 - int(255 * self.shade)))

    @property
    def fill(self) -> str:
        g = f"{self.green:02x}"
        return f"#ff{g}{g}" if self.depth == 0 else f"#{g}{g}ff"

    @property
    def font(self) -> str:
        return "#ffffff" if self.depth != 0 and self.green < 130 else "#000000"


def _shade(node: Node) -> float:
    e = node.element
    assert e is not None
    if node.depth == 0:
        return (e.activation - ACT_FLOOR) / (1 - ACT_FLOOR)
    return (e.importance - IMP_FLOOR) / (1 - IMP_FLOOR)


def collapse(trie: VisualTrie) -> list[GraphNode]:
    """Breadth-first, one GraphNode per (depth, token); the first node seen sets its colour."""
    nodes: list[GraphNode] = []
    by_key: dict[tuple[int, str], int] = {}
    queue: deque[tuple[Node, int | None]] = deque((c, None) for c in trie.root.children.values())
    while queue:
        node, parent = queue.popleft()
        key = (node.depth, node.element.token)
        index = by_key.get(key)
        if index is None:
            index = len(nodes)
            by_key[key] = index
            nodes.append(
                GraphNode(index, node.depth, node.element.token, _shade(node), node.element.is_end)
            )
        elif node.element.is_end:
            nodes[index].is_end = True
        if parent is not None and index not in nodes[parent].children:
            nodes[parent].children.append(index)
        queue.extend((c, index) for c in node.children.values())
    return nodes


def _label(token: str) -> str:
    return json.dumps(token)[1:-1] if token.strip() else json.dumps(token)


def to_dot(nodes: list[GraphNode]) -> str:
    """Graphviz source in the layout N2G published (activating tokens on the right)."""
    if not nodes:
        return "digraph {}\n"
    max_depth = max(n.depth for n in nodes)
    lines = [
        "digraph {",
        "  graph [rankdir=RL splines=spline ranksep=1.5 nodesep=0.2]",
        "  node [fixedsize=true width=2 height=0.75 shape=box]",
    ]
    for depth in range(max_depth + 1):
        lines.append(f"  subgraph cluster_{max_depth - depth} {{")
        lines.append("    pencolor=white penwidth=3")
        for n in (n for n in nodes if n.depth == depth):
            label = _label(n.token)
            size = 18 if len(label) >= 12 else 25
            width = 7 if n.is_end else 3
            lines.append(
                f'    {n.index} [label="{label.replace(chr(34), chr(92) + chr(34))}" '
                f'style="filled,solid" fillcolor="{n.fill}" fontcolor="{n.font}" '
                f"fontsize={size} penwidth={width}]"
            )
        lines.append("  }")
    for n in nodes:
        for c in n.children:
            lines.append(f"  {n.index} -> {c} [dir=back penwidth=3]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_deepdecipher(nodes: list[GraphNode]) -> dict:
    """DeepDecipher's compact graph: nodes grouped by depth, `required` = deeper context nodes."""
    offsets = [0]
    depth = 0
    for n in nodes:  # breadth-first order is depth order
        while n.depth > depth:
            offsets.append(n.index)
            depth += 1
    offsets.append(len(nodes))
    return {
        "subgraph_indices": offsets,
        "graph": [
            {
                "token": n.token,
                "required": list(n.children),
                "importance": round(1 - n.green / 255, 4),
            }
            for n in nodes
        ],
    }


# -- SVG --------------------------------------------------------------------------------------

BOX_H, GAP_Y, COL_W, GAP_X, PAD = 30, 10, 130, 50, 10


def _display(token: str) -> str:
    shown = token.replace("\n", "\u21b5").replace("\t", "\u2192")
    if not shown.strip():
        shown = shown.replace(" ", "\u2423")
    return shown if len(shown) <= 16 else shown[:15] + "\u2026"


def to_svg(nodes: list[GraphNode]) -> str:
    """A self-contained SVG: one column per depth, activating tokens in the right-hand column.

    Rendered here rather than by Graphviz so that serving needs no binary; the layout keeps
    each node's children in breadth-first order, which keeps related paths near each other.
    """
    if not nodes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>'
    max_depth = max(n.depth for n in nodes)
    columns: list[list[GraphNode]] = [[] for _ in range(max_depth + 1)]
    for n in nodes:
        columns[n.depth].append(n)
    tallest = max(len(c) for c in columns)
    height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y
    width = PAD * 2 + (max_depth + 1) * COL_W + max_depth * GAP_X
    pos: dict[int, tuple[float, float]] = {}
    for depth, col in enumerate(columns):
        x = width - PAD - COL_W - depth * (COL_W + GAP_X)
        span = len(col) * BOX_H + (len(col) - 1) * GAP_Y
        top = (height - span) / 2
        for i, n in enumerate(col):
            pos[n.index] = (x, top + i * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="n2g-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Neuron to Graph token graph">',
        '<defs><marker id="n2g-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>',
    ]
    for n in nodes:
        px, py = pos[n.index]
        for c in n.children:
            cx, cy = pos[c]
            x1, y1, x2, y2 = cx + COL_W, cy + BOX_H / 2, px, py + BOX_H / 2
            mid = (x1 + x2) / 2
            parts.append(
                f'<path d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} '
                f'{x2:.0f},{y2:.0f}" stroke="#888" fill="none" stroke-width="1.5" '
                'marker-end="url(#n2g-arrow)"/>'
            )
    for n in nodes:
        x, y = pos[n.index]
        kind = "activating" if n.depth == 0 else "context"
        stroke = 3 if n.is_end else 1
        token = html.escape(n.token, quote=True)
        parts.append(
            f'<g class="n2g-node {kind}" data-token="{token}" data-depth="{n.depth}">'
            f"<title>{token} (depth {n.depth}, shade {n.shade:.2f})</title>"
            f'<rect x="{x}" y="{y:.0f}" width="{COL_W}" height="{BOX_H}" rx="4" '
            f'fill="{n.fill}" stroke="#333" stroke-width="{stroke}"/>'
            f'<text x="{x + COL_W / 2}" y="{y + BOX_H / 2 + 5:.0f}" text-anchor="middle" '
            f'font-family="monospace" font-size="14" fill="{n.font}">'
            f"{html.escape(_display(n.token))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
