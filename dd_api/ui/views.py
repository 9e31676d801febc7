"""What the UI pages show, computed from the same service functions the JSON API serves.

Every function here takes the API's ``DataStore`` and returns plain values or ``Markup`` for the
templates: no HTTP round trip to the API. A service that has no data yet comes back as a section
whose ``state`` is ``"missing"`` (the template prints "not computed"), never as an error page.

Heavy repeated markup (token spans, histogram bars) is built here in Python rather than in Jinja
loops: a neuron page has ~3,600 token spans, and a list comprehension renders them several times
faster than a template loop.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from html import escape

import numpy as np
from markupsafe import Markup

from dd_api import n2g
from dd_api.app import _one, _resolve, _serve
from dd_api.errors import NotFound
from dd_api.search import search_payload
from dd_api.services import SERVICES, metadata_object
from dd_api.store import DataStore
from dd_assets.tables import EXPLANATIONS, N2G_TOKEN_INDEX, NEURON_EXAMPLES, NEURON_STATS

WINDOW_BEFORE, WINDOW_AFTER = 50, 4
"""Tokens shown around the peak token of an example before "show whole text"."""
LAYER_TOPS = 8
"""Most important neurons listed per layer on the model page."""

# -- sections ---------------------------------------------------------------------------------


def section(payload: dict) -> dict:
    """One service's envelope as a template section: state ``ok``, ``missing`` or ``absent``.

    ``missing``: the service has no data for this model or layer (not computed yet);
    ``absent``: it has data for the model but not for this neuron (``{"error": ...}`` from ``all``).
    """
    if "data" in payload:
        return {"state": "ok", "data": payload["data"]}
    if "missing_data_types" in payload:
        return {"state": "missing", "missing": payload["missing_data_types"]}
    return {"state": "absent", "detail": payload.get("error", "no data")}


def coverage(store: DataStore, model: str, num_layers: int) -> list[dict]:
    """Per service (metadata aside): how many layers have data, for the model cards."""
    out = []
    for name, svc in SERVICES.items():
        if name == "metadata":
            continue
        if not svc.tables:
            done = 0
        else:
            counts = [
                len(store.layers_present(t, model))
                if t.per_layer
                else (num_layers if store.has_model(t, model) else 0)
                for t in svc.tables
            ]
            done = min(counts)
        out.append(
            {
                "name": name,
                "description": svc.description,
                "layers": done,
                "num_layers": num_layers,
                "state": "ok" if done == num_layers else "partial" if done else "missing",
            }
        )
    return out


def models(store: DataStore) -> list[dict]:
    """Every materialized model's metadata and service coverage (the index page's cards)."""
    cards = []
    for name in store.registry().names:
        try:
            meta = metadata_object(store, name)
        except NotFound:
            continue
        cards.append({"meta": meta, "coverage": coverage(store, name, meta["num_layers"])})
    return cards


def validate(store: DataStore, model: str, layer: str, neuron: str | None) -> None:
    """Raise the API's NotFound/BadRequest for an unknown model or a bad index."""
    _resolve(store, model, layer, neuron)


# -- navigation -------------------------------------------------------------------------------


def neighbours(meta: dict, layer: int, neuron: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(previous, next) neuron, wrapping across layers and around the model."""
    size, layers = meta["layer_size"], meta["num_layers"]
    flat = layer * size + neuron
    total = size * layers
    prev, nxt = (flat - 1) % total, (flat + 1) % total
    return divmod(prev, size), divmod(nxt, size)


def random_neuron(meta: dict, rng: random.Random | None = None) -> tuple[int, int]:
    rng = rng or random.SystemRandom()
    return rng.randrange(meta["num_layers"]), rng.randrange(meta["layer_size"])


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


def examples(texts: list[dict]) -> list[dict]:
    """Template-ready examples: coloured token markup plus the facts shown under the toggle."""
    out = []
    for t in texts:
        peak = int(t["max_activating_token_index"])
        out.append(
            {
                "html": tokens_html(t["tokens"], t["activations"], peak),
                "max_activation": t["max_activation"],
                "min_activation": t["min_activation"],
                "data_index": t["data_index"],
                "peak": peak,
                "peak_token": t["tokens"][peak] if peak < len(t["tokens"]) else "",
                "length": len(t["tokens"]),
                "source": t.get("source", ""),
                "truncated": peak > WINDOW_BEFORE or peak + WINDOW_AFTER + 1 < len(t["tokens"]),
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


def bars_html(items: list[dict], key: str = "value") -> Markup:
    """Rows with a proportional bar, for logit effects."""
    if not items:
        return Markup("")
    peak = max(abs(float(x[key])) for x in items) or 1.0
    rows = []
    for x in items:
        v = float(x[key])
        rows.append(
            f'<li><code>{_show(str(x["token"]))}</code><span class="bar{" neg" if v < 0 else ""}"'
            f' style="--w:{abs(v) / peak:.3f}"></span><span class="num">{v:.3f}</span></li>'
        )
    return Markup("".join(rows))


# -- pages ------------------------------------------------------------------------------------


def neuron_page(store: DataStore, model: str, layer: str, neuron: str) -> dict:
    """Everything the neuron page shows, from one in-process call per service."""
    meta, li, ni = _resolve(store, model, layer, neuron)
    payload = _serve(store, model, "all", str(li), str(ni))
    sections = {name: section(p) for name, p in payload.items() if name != "metadata"}
    scope = sections["neuroscope"]
    if scope["state"] == "ok":
        scope["examples"] = examples(scope["data"]["texts"])
    quant = sections["quantile_examples"]
    if quant["state"] == "ok":
        quant["bands"] = [
            {**band, "examples": examples(band["texts"])} for band in quant["data"]["bands"]
        ]
    bottom = sections["bottom_examples"]
    if bottom["state"] == "ok":
        bottom["examples"] = examples(bottom["data"]["texts"])  # same colour scale as the top
    stats = sections["activation_stats"]
    if stats["state"] == "ok":
        hist = stats["data"]["histogram"]
        stats["svg"] = histogram_svg(
            hist["edges"], hist["counts"], title="activation histogram", log=True
        )
    logits = sections["logit_effects"]
    if logits["state"] == "ok":
        logits["top_html"] = bars_html(logits["data"]["top"])
        logits["bottom_html"] = bars_html(logits["data"]["bottom"])
    n2g = sections["neuron2graph"]
    if n2g["state"] == "ok":
        n2g["svg"] = Markup(n2g["data"].get("svg") or "")  # rendered by our own code, safe
    prev, nxt = neighbours(meta, li, ni)
    return {
        "meta": meta,
        "layer": li,
        "neuron": ni,
        "prev": prev,
        "next": nxt,
        "s": sections,
    }


def _layer_section(store: DataStore, name: str, model: str, meta: dict, layer: int) -> dict:
    """One service at layer level as a section; a service without layer data is ``absent``."""
    try:
        return section(_one(store, SERVICES[name], model, meta, layer, None))
    except NotFound as exc:
        return section({"error": exc.detail})


def _layer_tops(store: DataStore, model: str) -> dict[int, list[tuple[int, float]]]:
    def build():
        df = store.importance(model)
        tops = df.group_by("layer", maintain_order=True).head(LAYER_TOPS)
        out: dict[int, list[tuple[int, float]]] = {}
        for layer, neuron, r in tops.iter_rows():
            out.setdefault(int(layer), []).append((int(neuron), float(r)))
        return out

    return store.derived("ui_layer_tops", (NEURON_EXAMPLES,), model, build)


def model_page(store: DataStore, model: str) -> dict:
    meta, _, _ = _resolve(store, model, None, None)
    tops = _layer_tops(store, model)
    layers = [{"layer": li, "top": tops.get(li, [])} for li in range(meta["num_layers"])]
    return {"meta": meta, "layers": layers, "coverage": coverage(store, model, meta["num_layers"])}


def layer_page(store: DataStore, model: str, layer: str, limit: int, offset: int) -> dict:
    meta, li, _ = _resolve(store, model, layer, None)
    scope = section(_one(store, SERVICES["neuroscope"], model, meta, li, None))
    stats = section(_one(store, SERVICES["activation_stats"], model, meta, li, None))
    n2g = _layer_section(store, "neuron2graph", model, meta, li)
    fidelity: dict[int, dict] = {}
    if n2g["state"] == "ok":
        fidelity = {int(r["neuron"]): r for r in n2g["data"].get("neurons", [])}
    per_neuron: dict[int, tuple[float, float]] = {}
    if stats["state"] == "ok":
        frame = store.frame(NEURON_STATS, model, li)
        for n, mx, fp in frame.select("neuron", "max", "frac_positive").iter_rows():
            per_neuron[int(n)] = (float(mx), float(fp))
        data = stats["data"]
        frac = np.asarray(data["frac_positive"], dtype=np.float64)
        counts, edges = np.histogram(frac, bins=40, range=(0.0, 1.0))
        stats["density_svg"] = histogram_svg(
            edges, counts, title="neurons by fraction of positions > 0 (density)"
        )
        mx = np.asarray(data["max"], dtype=np.float64)
        if len(mx):
            counts, edges = np.histogram(mx, bins=40)
            stats["max_svg"] = histogram_svg(edges, counts, title="neurons by max activation")
        stats["dead"] = int((mx <= 0).sum())
    rows, total = [], 0
    if scope["state"] == "ok":
        ranked = scope["data"]["important_neurons"]
        total = len(ranked)
        for idx, act_range in ranked[offset : offset + limit]:
            n = idx["neuron"]
            mx, fp = per_neuron.get(n, (None, None))
            rows.append(
                {"neuron": n, "range": act_range, "max": mx, "frac_positive": fp,
                 "fidelity": fidelity.get(n)}
            )  # fmt: skip
    return {
        "meta": meta,
        "layer": li,
        "rows": rows,
        "total": total,
        "limit": limit,
        "offset": offset,
        "scope": scope,
        "stats": stats,
        "n2g": n2g,
    }


# -- searches ---------------------------------------------------------------------------------


def token_query(text: str) -> str:
    """The N2G search query for what was typed: ``any:`` is assumed for bare tokens."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return ",".join(p if ":" in p else f"any:{p}" for p in parts)


def token_search_available(store: DataStore, model: str) -> bool:
    """Whether the N2G token index exists for the model."""
    return store.has_model(N2G_TOKEN_INDEX, model)


def token_search(store: DataStore, model: str, query: str, limit: int, offset: int):
    """`dd_api.n2g.search`'s result dict, or None when not computed for the model."""
    if not token_search_available(store, model):
        return None
    return n2g.search(store, model, query, limit, offset)


def explanation_search_available(store: DataStore, model: str) -> bool:
    return store.has_model(EXPLANATIONS, model)


def explanation_search(store: DataStore, model: str, q: str, limit: int, offset: int):
    """`dd_api.search`'s result (data, total), or None when the model has no explanations."""
    if not explanation_search_available(store, model):
        return None
    meta = metadata_object(store, model)
    return search_payload(store, model, meta, q, limit, offset)
