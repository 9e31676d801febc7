"""The `explanations` asset on the tiny model: every neuron, offline, held-out, reproducible."""

from __future__ import annotations

import polars as pl
import pytest

from dd_assets import storage
from dd_assets.tables import ACTIVATION_SAMPLE_WINDOWS, EXPLANATIONS, NEURON_EXAMPLES


def test_every_neuron_has_an_offline_explanation(tiny):
    df = storage.read(tiny.root, EXPLANATIONS, "tiny")
    assert df.height == 2 * 96
    assert df.select("layer", "neuron").n_unique() == 2 * 96
    assert set(df["status"]) == {"ok"}
    assert set(df["explainer"]) == {"offline-tokens-v1"}
    assert set(df["kind"]) == {"top-tokens"}
    # Where the token list never occurs in the held-out excerpts (tiny documents are 24 tokens and
    # a neuron has two explain excerpts), the token-class means score instead, and say so.
    assert set(df["scorer"]) == {"token-lookup-v1", "token-class-mean-v1"}
    assert set(df["simulator_mode"]) == {"offline"}
    assert (df["explanation"].str.len_chars() > 0).all()
    fallback = df.filter(pl.col("scorer") == "token-class-mean-v1")
    assert fallback["score_status"].str.starts_with("scored by fallback: explanation tokens").any()
    scores = df["score"].drop_nulls()
    assert ((scores >= -1) & (scores <= 1)).all()
    # No silent null: every row without a score says why, and every scored row says it is scored.
    unscored = df.filter(pl.col("score").is_null())
    assert unscored["score_status"].str.starts_with("unscored: ").all()
    assert df.filter(pl.col("score").is_not_null())["score_status"].str.starts_with("scored").all()
    assert scores.len() > 0.8 * df.height


def test_scored_documents_are_disjoint_from_explained_ones(tiny):
    df = storage.read(tiny.root, EXPLANATIONS, "tiny")
    examples = storage.read(tiny.root, NEURON_EXAMPLES, "tiny")
    windows = set(storage.read(tiny.root, ACTIVATION_SAMPLE_WINDOWS, "tiny")["doc_index"].to_list())
    for row in df.iter_rows(named=True):
        explain, score = set(row["explain_doc_indices"]), set(row["score_doc_indices"])
        assert explain and score
        assert not explain & score
        mine = examples.filter(
            (pl.col("layer") == row["layer"]) & (pl.col("neuron") == row["neuron"])
        )
        top = mine.filter(pl.col("kind") == "top").sort("rank")["doc_index"].to_list()
        # Interleaved split: explain = top ranks 0, 4, ...; top scored = ranks 2, 6, ...
        assert row["explain_doc_indices"] == top[0::4]
        assert set(top[2::4]) <= score
        # The random half: 5 windows of the scan's seeded uniform sample.
        assert row["random_source"] == "uniform-sample"
        assert score - set(top) <= windows and len(score - set(top[2::4])) >= 1


def test_llm_configured_run_explains_a_budgeted_sample_and_caches(tiny, tmp_path, monkeypatch):
    """The asset with an endpoint configured: a sample by LLM, the rest offline, one record each."""
    import shutil

    import dagster as dg

    from dagster_project.jobs import ALL_ASSETS
    from dagster_project.resources import build_resources
    from dd_assets.assets.explanations import explanations, llm_sample
    from dd_assets.partitions import layer_key, layer_partitions, model_partitions
    from tests.explain.fake_openai import EXPLANATION, fake_openai_server

    root = str(tmp_path / "data")
    shutil.copytree(tiny.root, root)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(model_partitions.name, ["tiny"])
    instance.add_dynamic_partitions(layer_partitions.name, ["0", "1"])
    with fake_openai_server() as (fake, url):
        monkeypatch.setenv("DEEPDECIPHER_EXPLAINER_BASE_URL", url)
        monkeypatch.setenv("DEEPDECIPHER_EXPLAINER_MODEL", "explainer-x")
        monkeypatch.setenv("DEEPDECIPHER_EXPLAINER_MAX_NEURONS", "4")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-never-stored")
        resources = build_resources(root, str(tiny.registry))
        for _ in range(2):  # the second run is answered from the cache
            result = dg.materialize(
                ALL_ASSETS, selection=[explanations], partition_key=layer_key("tiny", 1),
                instance=instance, resources=resources,
            )  # fmt: skip
            assert result.success
        asked = len(fake.requests)
        assert fake.count("explain") == 4  # once per sampled neuron, over both runs
    assert asked > 4
    df = storage.read(root, EXPLANATIONS, "tiny", [1])
    assert df.height == 96 and df["neuron"].n_unique() == 96
    llm = df.filter(pl.col("explainer") == "explainer-x")
    assert sorted(llm["neuron"].to_list()) == llm_sample("tiny", 1, 96, 4)
    assert set(llm["explanation"]) == {EXPLANATION}
    assert set(llm["scorer"]) == {"explainer-x"}  # the simulator defaults to the explainer
    assert set(llm["simulator_mode"]) == {"logprobs"}
    assert (
        df.filter(pl.col("explainer") != "explainer-x")["explainer"] == "offline-tokens-v1"
    ).all()
    cache = list((tmp_path / "data" / "_explainer_cache" / "tiny").glob("*.jsonl"))
    assert len(cache) == 1 and "sk-never-stored" not in cache[0].read_text()


def test_every_explanation_has_a_unit_embedding_from_the_shared_encoder(tiny):
    import numpy as np

    from dd_assets.methods.explain.semantic import embed_explanations
    from dd_assets.methods.sentence_encoder import default_encoder
    from dd_assets.tables import EXPLANATION_EMBEDDINGS

    # Part of the default run: the tiny fixture's materialization wrote it.
    df = storage.read(tiny.root, EXPLANATIONS, "tiny").filter(pl.col("status") == "ok")
    emb = storage.read(tiny.root, EXPLANATION_EMBEDDINGS, "tiny")
    assert emb.height == df.height and set(emb["encoder"]) == {"all-MiniLM-L6-v2"}
    joined = df.join(emb, on=["layer", "neuron"]).sort("layer", "neuron").head(12)
    stored = np.asarray(joined["embedding"].to_list(), dtype=np.float32)
    assert stored.shape == (12, 384)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)
    again = embed_explanations(
        default_encoder(), joined["kind"].to_list(), joined["explanation"].to_list()
    )
    np.testing.assert_allclose(stored, again, atol=1e-5)


def test_window_embeddings_are_the_encoder_run_on_each_grid_window(tiny):
    import numpy as np

    from dd_assets.assets.window_embeddings import GRID
    from dd_assets.methods.sentence_encoder import default_encoder
    from dd_assets.tables import DATASET_TOKENS, WINDOW_EMBEDDINGS

    windows = storage.read(tiny.root, WINDOW_EMBEDDINGS, "tiny").sort("window")
    tokens = storage.read(tiny.root, DATASET_TOKENS, "tiny").sort("doc_index")
    starts = GRID.starts(24).tolist()
    assert windows.height == tokens.height * len(starts)
    assert windows["window"].to_list() == list(range(windows.height))
    assert set(windows["encoder"]) == {"all-MiniLM-L6-v2"}
    picked = windows.gather([0, 7, windows.height - 1])
    texts = []
    for doc, start, length in picked.select("doc_index", "start", "length").iter_rows():
        row = tokens.filter(pl.col("doc_index") == doc)["tokens"][0].to_list()
        assert start >= 1 and start + length <= len(row)
        texts.append("".join(row[start : start + length]))
    stored = np.asarray(picked["embedding"].to_list(), dtype=np.float32)
    np.testing.assert_allclose(stored, default_encoder().embed(texts), atol=1e-5)


def test_every_neuron_has_an_embedding_auroc_or_a_reason_and_it_matches_brute_force(tiny):
    import numpy as np

    from dd_assets.assets.window_embeddings import GRID
    from dd_assets.tables import EMBEDDING_SCORES, EXPLANATION_EMBEDDINGS, WINDOW_EMBEDDINGS
    from tests.explain.test_embedding_score import brute_auroc

    scores = storage.read(tiny.root, EMBEDDING_SCORES, "tiny")
    assert scores.height == 2 * 96 and scores.select("layer", "neuron").n_unique() == 2 * 96
    assert set(scores["scorer"]) == {"embedding-auroc-v1"}
    assert set(scores["encoder"]) == {"all-MiniLM-L6-v2"}
    assert set(scores["negative_source"]) == {"uniform-sample"}
    assert (scores["score"].is_null() == scores["score_status"].str.starts_with("unscored: ")).all()
    assert (scores.filter(pl.col("score").is_not_null())["score_status"] == "scored").all()
    assert scores["score"].drop_nulls().is_between(0, 1).all()
    assert scores["score"].drop_nulls().len() > 0.8 * scores.height

    # Recompute some neurons from the stored vectors by the definition, pair by pair.
    expl = storage.read(tiny.root, EXPLANATIONS, "tiny")
    examples = storage.read(tiny.root, NEURON_EXAMPLES, "tiny")
    windows = storage.read(tiny.root, WINDOW_EMBEDDINGS, "tiny")
    vectors = storage.read(tiny.root, EXPLANATION_EMBEDDINGS, "tiny")
    sample = storage.read(tiny.root, ACTIVATION_SAMPLE_WINDOWS, "tiny")
    by_key = {
        (d, s): np.asarray(v, np.float32)
        for d, s, v in windows.select("doc_index", "start", "embedding").iter_rows()
    }
    checked = 0
    for row in scores.filter(pl.col("score").is_not_null()).head(10).iter_rows(named=True):
        layer, neuron = row["layer"], row["neuron"]
        e = expl.filter((pl.col("layer") == layer) & (pl.col("neuron") == neuron)).row(
            0, named=True
        )
        assert set(row["positive_doc_indices"]) <= set(e["score_doc_indices"])
        assert not set(row["positive_doc_indices"]) & set(e["explain_doc_indices"])
        v = np.asarray(
            vectors.filter((pl.col("layer") == layer) & (pl.col("neuron") == neuron))["embedding"][
                0
            ],
            np.float32,
        )
        tops = examples.filter(
            (pl.col("layer") == layer) & (pl.col("neuron") == neuron) & (pl.col("kind") == "top")
        )
        pos = []
        for doc in row["positive_doc_indices"]:
            peak = tops.filter(pl.col("doc_index") == doc)["max_activating_token_index"][0]
            start = int(GRID.peak_starts(np.array([peak]), 24)[0])
            pos.append(float(by_key[(doc, start)] @ v))
        own = set(e["explain_doc_indices"]) | set(row["positive_doc_indices"])
        neg = []
        for doc, s, n in sample.select("doc_index", "start", "length").iter_rows():
            if doc not in own:
                neg += [float(by_key[(doc, int(w))] @ v) for w in GRID.span_starts(s, n, 24)]
        assert (row["positives"], row["negatives"]) == (len(pos), len(neg))
        assert row["score"] == pytest.approx(brute_auroc(pos, neg), abs=1e-6)
        checked += 1
    assert checked == 10
