"""Score summaries per scorer: what a layer or model summary reports, never pooling scorers.

Scores from different simulators are not comparable (an LLM simulator, the token lookup, its
token-class fallback), so a summary is a list with one entry per scorer. Unscored rows are counted,
not dropped, and the reasons they are unscored are counted too.
"""

from __future__ import annotations

import polars as pl

HIGH = 0.8  # OpenAI's "explains most of the top-activating behaviour" mark


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def scorer_summaries(frame: pl.DataFrame) -> list[dict]:
    """Per scorer (most rows first): kind, count, scored, unscored, mean, quartiles, share >= 0.8,
    mean top-only and random-only scores, and the unscored reasons with their counts.

    `frame` holds rows of the ``explanations`` table (columns scorer, kind, score, score_status,
    score_top, score_random); the quartiles are linear-interpolated.
    """
    out = []
    for (scorer,), g in frame.group_by("scorer", maintain_order=True):
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
                "mean_score_top": _num(g["score_top"].drop_nulls().mean())
                if g["score_top"].drop_nulls().len()
                else None,
                "mean_score_random": _num(g["score_random"].drop_nulls().mean())
                if g["score_random"].drop_nulls().len()
                else None,
                "unscored_reasons": dict(reasons.iter_rows()),
            }
        )
    return sorted(out, key=lambda r: (-r["count"], r["scorer"]))
