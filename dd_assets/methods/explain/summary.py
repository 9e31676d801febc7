"""Score summaries per scorer: what a layer or model summary reports, never pooling scorers.

Scores from different simulators are not comparable (an LLM simulator, the token lookup, its
token-class fallback), so a summary is a list with one entry per scorer. Unscored rows are counted,
not dropped, and the reasons they are unscored are counted too.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

HIGH = 0.8  # OpenAI's "explains most of the top-activating behaviour" mark


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def _mean(g: pl.DataFrame, column: str) -> float | None:
    if column not in g.columns or not g[column].drop_nulls().len():
        return None
    return _num(g[column].drop_nulls().mean())


def scorer_summaries(frame: pl.DataFrame, by: Sequence[str] = ("scorer",)) -> list[dict]:
    """Per scorer (most rows first): kind, count, scored, unscored, mean, quartiles, share >= 0.8,
    mean top-only and random-only scores, and the unscored reasons with their counts.

    `frame` holds rows of the ``explanations`` table (columns scorer, kind, score, score_status,
    score_top, score_random; a scorer without top-only or random-only scores may leave those
    out); the quartiles are linear-interpolated. `by` splits further, e.g. ``("scorer",
    "kind")`` for a scorer that scores every kind of explanation.
    """
    out = []
    for keys, g in frame.group_by(list(by), maintain_order=True):
        scorer = keys[0]
        s = g["score"].drop_nulls()
        reasons = (
            g.filter(pl.col("score").is_null())
            .group_by("score_status")
            .len()
            .sort(["len", "score_status"], descending=[True, False])
        )
        out.append(
            {
                "scorer": scorer,
                "kind": sorted(set(g["kind"].to_list())),
                "count": g.height,
                "scored": s.len(),
                "unscored": g.height - s.len(),
                "mean_score": _num(s.mean()) if s.len() else None,
                "quartiles": [_num(s.quantile(q, "linear")) for q in (0.25, 0.5, 0.75)]
                if s.len()
                else None,
                "share_at_least_0_8": _num((s >= HIGH).mean()) if s.len() else None,
                "mean_score_top": _mean(g, "score_top"),
                "mean_score_random": _mean(g, "score_random"),
                "unscored_reasons": dict(reasons.iter_rows()),
            }
        )
    return sorted(out, key=lambda r: (-r["count"], r["scorer"], r["kind"]))
