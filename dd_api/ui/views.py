"""What the UI pages show, from the same query functions the JSON API serves.

Every function here takes the ``DataStore`` and a typed reference and returns plain values or
``Markup`` for the templates: no HTTP round trip to the API, and no re-parsing of what the API
would print. A service that has no data yet comes back as a section whose ``state`` is
``"missing"`` (the template prints "not computed" and why), never as an error page.

Heavy repeated markup (token spans, histogram bars) is built here in Python rather than in Jinja
loops: a neuron page has ~3,600 token spans, and a list comprehension renders them several times
faster than a template loop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache
from html import escape
from typing import Any

import numpy as np
from markupsafe import Markup

from dd_api.query import n2g, neuroscope, search, stats
from dd_api.query.errors import DDError, MissingData, NotFound
from dd_api.query.refs import LayerRef, ModelRef, NeuronRef, model_ref
from dd_api.query.schemas import Text
from dd_api.query.services import SERVICES, coverage, run
from dd_api.query.store import DataStore

WINDOW_BEFORE, WINDOW_AFTER = 50, 4
"""Tokens shown around the peak token of an example before "show whole text"."""
LAYER_TOPS = 8
"""Most important neurons listed per layer on the model page."""

# -- sections ---------------------------------------------------------------------------------


def section(compute: Callable[[], Any]) -> dict:
    """One query as a template section: state ``ok`` (with ``data``), ``missing`` (no data here
    yet: ``detail`` says which and why) or ``absent`` (the service has no such level)."""
    try:
        return {"state": "ok", "data": compute()}
    except MissingData as missing:
        return {"state": "missing", "missing": missing.tables, "detail": missing.detail}
    except NotFound as exc:
        return {"state": "absent", "detail": exc.detail}


def models(store: DataStore) -> list[dict]:
    """Every materialized model's metadata and service coverage (the index page's cards)."""
    cards = []
    for name in store.registry().names:
        try:
            ref = model_ref(store, name)
        except NotFound:
            continue
        cards.append({"meta": ref.meta, "coverage": coverage(store, ref)})
    return cards


# -- navigation -------------------------------------------------------------------------------


def neighbours(
    layers: int, size: int, layer: int, neuron: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(previous, next) neuron, wrapping across layers and around the model."""
    flat = layer * size + neuron
    total = size * layers
    prev, nxt = (flat - 1) % total, (flat + 1) % total
    return divmod(prev, size), divmod(nxt, size)


def random_neuron(ref: ModelRef, rng: random.Random | None = None) -> tuple[int, int]:
    rng = rng or random.SystemRandom()
    return rng.randrange(ref.num_layers), rng.randrange(ref.layer_size)


# -- tokens -----------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _show(token: str) -> str:
    """A token as displayed: newlines visible, the rest verbatim (CSS keeps spaces)."""
    return escape(token.replace("\n", "\u21b5\n").replace("\t", "\u2192\t"), quote=False)


def tokens_html(tokens: list[str], activations, peak: int) -> Markup:
    """Spans coloured by activation / max of this text (positive) or / |min| (negative, blue).

    Each span carries ``data-act`` and a ``title`` with the served activation. Tokens outside a
    window of WINDOW_BEFORE before and WINDOW_AFTER after the peak get class ``o`` and are only
    shown when the example's "show whole text" is open (CSS, no script needed).
    """
    acts = np.asarray(activations, dtype=np.float64)
    n = len(acts)
    if n == 0:
        return Markup("")
    top, bottom = float(acts.max()), float(acts.min())
    level = np.where(
        acts > 0, acts / (top if top > 0 else 1.0), -acts / (-bottom if bottom < 0 else 1.0)
    )
    shown = level >= 0.005
    pairs = zip(level.tolist(), shown.tolist(), strict=True)
    styles = [f' style="--a:{x:.2f}"' if s else "" for x, s in pairs]
    values = [f"{a:.4g}" for a in acts.tolist()]
    lo, hi = max(0, peak - WINDOW_BEFORE), peak + WINDOW_AFTER + 1
    classes = [""] * n
    for i in np.flatnonzero(shown & (acts < 0)).tolist():
        classes[i] = "n"
    for i in [*range(lo), *range(hi, n)]:
        classes[i] = f"{classes[i]} o".lstrip()
    if 0 <= peak < n:
        classes[peak] = f"{classes[peak]} pk".lstrip()
    attrs = [f' class="{c}"' if c else "" for c in classes]
    parts = [
        f'<span{c} data-act="{v}" title="{v}"{st}>{_show(t)}</span>'
        for t, v, st, c in zip(tokens, values, styles, attrs, strict=False)
    ]
    if lo > 0:
        parts.insert(lo, '<span class="gap">\u2026</span>')
    if hi < n:
        parts.append('<span class="gap">\u2026</span>')
    return Markup("".join(parts))


def examples(texts: list[Text]) -> list[dict]:
    """Template-ready examples: coloured token markup plus the facts shown under the toggle."""
    out = []
    for t in texts:
        peak = t.max_activating_token_index
        out.append(
            {
                "html": tokens_html(t.tokens, t.activations, peak),
                "max_activation": float(t.max_activation),
                "min_activation": float(t.min_activation),
                "data_index": t.data_index,
                "peak": peak,
                "peak_token": t.tokens[peak] if peak < len(t.tokens) else "",
                "length": len(t.tokens),
                "source": t.source,
                "truncated": peak > WINDOW_BEFORE or peak + WINDOW_AFTER + 1 < len(t.tokens),
            }
        )
    return out


# -- plots ------------------------------------------------------------------------------------


def _tick(v: float) -> str:
    return f"{v:.3g}"


def histogram_svg(
    edges, counts, *, title: str, log: bool = False, width: int = 400, height: int = 120
) -> Markup:
    """A bar chart as inline SVG; each bar has a tooltip with its range and count."""
    edges = [float(e) for e in edges]
    counts = [int(c) for c in counts]
    if not counts or len(edges) != len(counts) + 1:
        return Markup('<p class="muted">no histogram</p>')
    scale = (lambda c: math.log1p(c)) if log else float
    peak = max(scale(c) for c in counts) or 1.0
    pad_b, pad_t = 18, 4
    plot_h = height - pad_b - pad_t
    bar_w = width / len(counts)
    bars = []
    for i, c in enumerate(counts):
        h = plot_h * scale(c) / peak
        tip = f"{_tick(edges[i])} to {_tick(edges[i + 1])}: {c}"
        bars.append(
            f'<rect x="{i * bar_w:.1f}" y="{pad_t + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}"'
            f' height="{h:.1f}"><title>{tip}</title></rect>'
        )
    zero = ""
    if edges[0] < 0 < edges[-1]:
        x = width * (0 - edges[0]) / (edges[-1] - edges[0])
        zero = f'<line class="zero" x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{pad_t + plot_h}"/>'
    note = " (log scale)" if log else ""
    return Markup(
        f'<svg class="hist" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}{note}"><title>{escape(title)}{note}</title>'
        f"{''.join(bars)}{zero}"
        f'<text x="0" y="{height - 4}">{_tick(edges[0])}</text>'
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{_tick(edges[-1])}</text>'
        "</svg>"
    )


def bars_html(items: list, key: str = "value") -> Markup:
    """Rows with a proportional bar, for logit effects."""
    if not items:
        return Markup("")
    peak = max(abs(float(getattr(x, key))) for x in items) or 1.0
    rows = []
    for x in items:
        v = float(getattr(x, key))
        rows.append(
            f'<li><code>{_show(str(x.token))}</code><span class="bar{" neg" if v < 0 else ""}"'
            f' style="--w:{abs(v) / peak:.3f}"></span><span class="num">{v:.3f}</span></li>'
        )
    return Markup("".join(rows))


# -- pages ------------------------------------------------------------------------------------


def neuron_page(store: DataStore, ref: NeuronRef) -> dict:
    """Everything the neuron page shows, from one query per service."""
    sections = {
        name: section(lambda svc=svc: run(store, svc, ref))
        for name, svc in SERVICES.items()
        if name != "metadata"
    }
    scope = sections["neuroscope"]
    if scope["state"] == "ok":
        scope["examples"] = examples(scope["data"].texts)
    quant = sections["quantile_examples"]
    if quant["state"] == "ok":
        quant["bands"] = [
            {"lower_quantile": band.lower_quantile, "upper_quantile": band.upper_quantile,
             "examples": examples(band.texts)}
            for band in quant["data"].bands
        ]  # fmt: skip
    bottom = sections["bottom_examples"]
    if bottom["state"] == "ok":
        bottom["examples"] = examples(bottom["data"].texts)  # same colour scale as the top
    st = sections["activation_stats"]
    if st["state"] == "ok":
        hist = st["data"].histogram
        st["svg"] = histogram_svg(hist.edges, hist.counts, title="activation histogram", log=True)
    logits = sections["logit_effects"]
    if logits["state"] == "ok":
        logits["top_html"] = bars_html(logits["data"].top)
        logits["bottom_html"] = bars_html(logits["data"].bottom)
    graph = sections["neuron2graph"]
    if graph["state"] == "ok":
        graph["svg"] = Markup(graph["data"].svg)  # rendered by our own code, safe
    prev, nxt = neighbours(ref.model.num_layers, ref.model.layer_size, ref.layer, ref.neuron)
    return {
        "meta": ref.model.meta,
        "layer": ref.layer,
        "neuron": ref.neuron,
        "prev": prev,
        "next": nxt,
        "s": sections,
    }


def model_page(store: DataStore, ref: ModelRef) -> dict:
    tops = neuroscope.layer_tops(store, ref, LAYER_TOPS)
    layers = [{"layer": li, "top": tops.get(li, [])} for li in range(ref.num_layers)]
    return {"meta": ref.meta, "layers": layers, "coverage": coverage(store, ref)}


def layer_page(store: DataStore, ref: LayerRef, limit: int, offset: int) -> dict:
    scope = section(lambda: run(store, SERVICES["neuroscope"], ref, (limit, offset)))
    st = section(lambda: run(store, SERVICES["activation_stats"], ref))
    graphs = section(lambda: run(store, SERVICES["neuron2graph"], ref))
    fidelity = {r.neuron: r for r in graphs["data"].neurons} if graphs["state"] == "ok" else {}
    per_neuron: dict[int, tuple[float, float]] = {}
    if st["state"] == "ok":
        per_neuron = stats.per_neuron(store, ref)
        data = st["data"]
        frac = np.asarray(data.frac_positive, dtype=np.float64)
        counts, edges = np.histogram(frac, bins=40, range=(0.0, 1.0))
        st["density_svg"] = histogram_svg(
            edges, counts, title="neurons by fraction of positions > 0 (density)"
        )
        mx = np.asarray(data.max, dtype=np.float64)
        if len(mx):
            counts, edges = np.histogram(mx, bins=40)
            st["max_svg"] = histogram_svg(edges, counts, title="neurons by max activation")
        st["dead"] = int((mx <= 0).sum())
    rows, total = [], 0
    if scope["state"] == "ok":
        total = scope["data"].total
        for idx, act_range in scope["data"].important_neurons:
            mx, fp = per_neuron.get(idx.neuron, (None, None))
            rows.append(
                {"neuron": idx.neuron, "range": act_range, "max": mx, "frac_positive": fp,
                 "fidelity": fidelity.get(idx.neuron)}
            )  # fmt: skip
    return {
        "meta": ref.model.meta,
        "layer": ref.layer,
        "rows": rows,
        "total": total,
        "limit": limit,
        "offset": offset,
        "scope": scope,
        "stats": st,
        "n2g": graphs,
    }


# -- searches ---------------------------------------------------------------------------------


def token_query(text: str) -> str:
    """The N2G search query for what was typed: ``any:`` is assumed for bare tokens."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return ",".join(p if ":" in p else f"any:{p}" for p in parts)


def _search(compute: Callable[[], Any]) -> tuple[Any, str | None]:
    """(result, None), (None, the error message), or (None, None) when not computed."""
    try:
        return compute(), None
    except MissingData:
        return None, None
    except DDError as exc:
        return None, exc.detail


def token_search(store: DataStore, ref: ModelRef, text: str, limit: int, offset: int):
    return _search(lambda: n2g.search(store, ref, token_query(text), limit, offset))


def explanation_search(store: DataStore, ref: ModelRef, q: str, limit: int, offset: int):
    return _search(lambda: search.search(store, ref, q, limit, offset))
