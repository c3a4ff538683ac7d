"""Diff, correlations, retrieval and clustering called as operations, checked against the stored matrix."""

from __future__ import annotations

import numpy as np
import pytest

from saescope import analyses as an
from saescope import ops
from saescope.errors import InputError
from saescope.ops.analyses import class_guide, cluster_resolved, rank_by_property, run_diff
from saescope.ops.docsets import DocSet, resolve
from saescope.ops.encoder import context_embeddings, dataset_vectors, encode, label_embeddings
from saescope.ops.requests import ClusterRequest, CorrelationsRequest, DiffRequest, RetrieveRequest
from tests.ops.helpers import fires, matrix, meta, rows_where
from tests.server.shared import Data


def test_sets_diff_counts_match_the_matrix(data: Data) -> None:
    req = DiffRequest.build(
        dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'plot'", min_support=1, top_k=5
    )
    res = ops.diff(data.ws, req)
    assert res.mode == "sets" and res.paired is None and res.one_vs_many is None
    assert isinstance(res.sets, an.SetDiff) and res.diff is res.sets
    d = res.sets
    assert (d.n_a, d.n_b) == (16, 16) and len(d.rows) == 5
    M = matrix(data)
    a, b = rows_where(data, "category", "fresh"), rows_where(data, "category", "plot")
    for row in d.rows[:2]:
        assert row.count_a == int(fires(M, a, row.latent).sum())
        assert row.count_b == int(fires(M, b, row.latent).sum())
        assert row.freq_a == pytest.approx(row.count_a / 16)
    ids = meta(data)["doc_id"].to_numpy()
    top = d.rows[0]
    assert set(top.examples_a) <= {ids[r] for r in a[fires(M, a, top.latent)]}
    assert top.latent in {r.latent for r in res.sets.rows} and str(top.latent) in res.to_text()


def test_sets_diff_across_two_datasets_and_paging(data: Data) -> None:
    first = ops.diff(data.ws, DiffRequest.build(dataset_a="reviews", dataset_b="inject", min_support=1, top_k=3))
    assert first.sets is not None and (first.sets.n_a, first.sets.n_b) == (48, 10)
    assert first.sets.next_cursor == 3
    second = ops.diff(
        data.ws, DiffRequest.build(dataset_a="reviews", dataset_b="inject", min_support=1, top_k=3, cursor=3)
    )
    assert second.sets is not None
    assert not {r.latent for r in first.sets.rows} & {r.latent for r in second.sets.rows}
    M, N = matrix(data), matrix(data, "inject")
    row = second.sets.rows[0]
    assert row.count_b == int((N[:, row.latent].toarray() > 0).sum())
    assert row.count_a == int((M[:, row.latent].toarray() > 0).sum())


def test_paired_diff_counts_match_the_matrix(data: Data) -> None:
    req = DiffRequest.build(
        dataset_a="reviews",
        where_a="half == 'first'",
        where_b="half == 'second'",
        mode="paired",
        pair_key="pair",
        min_support=1,
        top_k=5,
    )
    res = ops.diff(data.ws, req)
    assert res.mode == "paired" and res.sets is None and isinstance(res.paired, an.PairedDiff)
    d = res.paired
    assert d.n_pairs == 24
    M = matrix(data)
    row = d.rows[0]
    fa = fires(M, np.arange(24), row.latent)  # pair i is row i (first half) and row 24 + i (second)
    fb = fires(M, np.arange(24, 48), row.latent)
    assert (row.only_a, row.only_b, row.both, row.neither) == (
        int((fa & ~fb).sum()),
        int((~fa & fb).sum()),
        int((fa & fb).sum()),
        int((~fa & ~fb).sum()),
    )
    assert row.freq_a == pytest.approx(fa.mean()) and row.freq_b == pytest.approx(fb.mean())
    pairs = meta(data)["pair"].to_numpy()
    assert set(row.examples_only_a) <= {str(pairs[i]) for i in np.flatnonzero(fa & ~fb)}


def test_one_vs_many_diff_counts_match_the_matrix(data: Data) -> None:
    req = DiffRequest.build(
        dataset_a="reviews", mode="one_vs_many", column="category", target="plot", min_support=1, top_k=5
    )
    res = ops.diff(data.ws, req)
    assert res.mode == "one_vs_many" and res.sets is None and res.paired is None
    d = res.one_vs_many
    assert isinstance(d, an.OneVsMany)
    assert d.target == "plot" and sorted(d.others) == ["fresh", "rotten"]
    assert d.n_target == 16 and d.n_others == {"fresh": 16, "rotten": 16}
    M = matrix(data)
    row = d.rows[0]
    plot = rows_where(data, "category", "plot")
    assert row.count_target == int(fires(M, plot, row.latent).sum())
    for g in ("fresh", "rotten"):
        assert row.freq_others[g] == pytest.approx(fires(M, rows_where(data, "category", g), row.latent).mean())
    others = np.concatenate([rows_where(data, "category", "fresh"), rows_where(data, "category", "rotten")])
    assert row.freq_pooled_others == pytest.approx(fires(M, others, row.latent).mean())


def test_diff_refuses_bad_sides(data: Data) -> None:
    with pytest.raises(InputError, match="selects 0"):
        ops.diff(data.ws, DiffRequest.build(dataset_a="reviews", where_a="category == 'x'", where_b="pair > 1"))
    with pytest.raises(InputError, match="repeats"):
        ops.diff(
            data.ws,
            DiffRequest.build(
                dataset_a="reviews",
                where_a="half == 'first'",
                where_b="half == 'second'",
                mode="paired",
                pair_key="category",
            ),
        )


def test_run_diff_is_the_same_diff(data: Data) -> None:
    req = DiffRequest.build(
        dataset_a="reviews", where_a="category == 'fresh'", where_b="category == 'rotten'", min_support=2, top_k=4
    )
    direct = run_diff(data.ws, req.spec, min_support=2, top_k=4)
    assert isinstance(direct, an.SetDiff)
    via = ops.diff(data.ws, req).sets
    assert via is not None and [r.latent for r in direct.rows] == [r.latent for r in via.rows]


def test_correlations_with_and_without_a_column(data: Data) -> None:
    meta_res = ops.correlations(data.ws, CorrelationsRequest.build(dataset="reviews", column="category", top_k=3))
    assert meta_res.kind == "metadata" and meta_res.cooccurrence is None
    assoc = meta_res.metadata
    assert assoc is not None and assoc.kind == "categorical" and assoc.n_docs == 48
    assert assoc.categories is not None
    assert {c.category for c in assoc.categories} == {"fresh", "rotten", "plot"}
    assert all(c.n_docs == 16 for c in assoc.categories)
    M = matrix(data)
    for cat in assoc.categories:
        for r in cat.rows[:1]:
            assert r.count_in == int(fires(M, rows_where(data, "category", cat.category), r.latent).sum())
    numeric = ops.correlations(data.ws, CorrelationsRequest.build(dataset="reviews", column="length", top_k=3))
    assert numeric.metadata is not None and numeric.metadata.kind == "numeric"

    cooc = ops.correlations(data.ws, CorrelationsRequest.build(dataset="reviews", min_cooc=3, top_k=5))
    assert cooc.kind == "cooccurrence" and cooc.metadata is None and cooc.cooccurrence is not None
    assert cooc.cooccurrence.n_docs == 48 and cooc.cooccurrence.pairs
    pair = cooc.cooccurrence.pairs[0]
    fa, fb = fires(M, np.arange(48), pair.latent_a), fires(M, np.arange(48), pair.latent_b)
    assert (pair.count_a, pair.count_b, pair.count_ab) == (int(fa.sum()), int(fb.sum()), int((fa & fb).sum()))
    assert pair.count_ab >= 3

    filtered = ops.correlations(
        data.ws, CorrelationsRequest.build(dataset="reviews", where="category == 'fresh'", min_cooc=2, top_k=5)
    )
    assert filtered.cooccurrence is not None and filtered.cooccurrence.n_docs == 16
    with pytest.raises(InputError):
        ops.correlations(data.ws, CorrelationsRequest.build(dataset="reviews", column="colour"))


def test_retrieve_with_explicit_latents_ranks_by_activation(data: Data) -> None:
    M = matrix(data)
    latent = next(iter(data.labelled))
    col = M[:, latent].toarray().ravel()
    positive = np.flatnonzero(col > 0)
    expected = sorted(positive.tolist(), key=lambda r: (-col[r], r))
    res = ops.retrieve(data.ws, RetrieveRequest.build(dataset="reviews", query="", latents=[latent], top_k=50))
    ids = meta(data)["doc_id"].to_numpy()
    assert [d.row for d in res.ranking.docs] == expected
    assert [d.doc_id for d in res.ranking.docs] == [ids[r] for r in expected]
    assert res.ranking.total == len(positive) and res.ranking.n_docs == 48
    # normalised by the 90th percentile of the column's non-zero activations
    assert res.ranking.docs[0].score == pytest.approx(col.max() / np.percentile(col[positive], 90))
    assert res.method == "sae"
    assert [p.latent for p in res.latents.latents] == [latent]
    assert res.dense_ranking is None

    page = ops.retrieve(
        data.ws, RetrieveRequest.build(dataset="reviews", query="", latents=[latent], top_k=3, cursor=2)
    )
    assert [d.row for d in page.ranking.docs] == expected[2:5]


def test_retrieve_within_a_filter_and_refusals(data: Data) -> None:
    M = matrix(data)
    latent = next(iter(data.labelled))
    fresh = rows_where(data, "category", "fresh")
    col = M[fresh, :][:, [latent]].toarray().ravel()
    res = ops.retrieve(
        data.ws,
        RetrieveRequest.build(dataset="reviews", query="", latents=[latent], where="category == 'fresh'", top_k=50),
    )
    assert res.ranking.n_docs == 16 and res.ranking.total == int((col > 0).sum())
    ids = meta(data)["doc_id"].to_numpy()
    assert {d.doc_id for d in res.ranking.docs} == set(ids[fresh[col > 0]])
    with pytest.raises(InputError):
        ops.retrieve(data.ws, RetrieveRequest.build(dataset="reviews", query="", latents=[10**6]))
    with pytest.raises(InputError, match="not in"):
        ops.retrieve(
            data.ws, RetrieveRequest.build(dataset="reviews", query="praise", positives=["no-such-doc"], latents=[1])
        )


def test_rank_by_property_with_words_prefers_the_matching_label(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    r = resolve(data.ws, DocSet("reviews"))
    res = rank_by_property(data.ws, r, "praise", n_latents=3, top_k=5)
    assert res.latents.latents[0].latent == praise
    assert res.ranking.docs and res.ranking.n_docs == 48


def test_retrieve_research_recipe_hybrid_and_dense(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    r = resolve(data.ws, DocSet("reviews"))
    M = matrix(data)
    research = rank_by_property(data.ws, r, "praise", method="sae-research", n_latents=5, top_k=48)
    assert research.method == "sae-research" and research.latents.latents[0].latent == praise
    assert [p.weight for p in research.latents.latents] == pytest.approx(an.rank_weights(5, 0.2))
    expected = an.rank_by_latents(M, research.latents.weights(), top_k=48, scoring="p90", doc_ids=r.doc_ids)
    assert [d.doc_id for d in research.ranking.docs] == [d.doc_id for d in expected.docs]

    vectors = dataset_vectors(data.ws, "reviews")
    dense = rank_by_property(data.ws, r, "praise", method="dense", top_k=48)
    assert dense.latents.latents == [] and dense.ranking.total == 48
    q = encode(["praise"])[0]
    assert [d.doc_id for d in dense.ranking.docs] == [
        d.doc_id for d in an.rank_dense(vectors, q, top_k=48, doc_ids=r.doc_ids).docs
    ]

    # sae-guided: the latents whose firing correlates best with the guide (the dense cosine plus the best
    # label-matched latent that fires, as clustering by classes uses), weighted by that correlation
    guided = rank_by_property(data.ws, r, "praise", method="sae-guided", n_latents=5, top_k=48)
    guide = class_guide(data.ws, r, ["praise"])
    assert guide.shape == (48, 1)
    corr = an.firing_correlations(M, guide)[:, 0]
    corr[np.asarray((M > 0).sum(axis=0)).ravel() < 2] = 0.0
    top5 = sorted(range(len(corr)), key=lambda j: (-corr[j], j))[:5]
    assert [p.latent for p in guided.latents.latents] == top5
    assert [p.weight for p in guided.latents.latents] == pytest.approx([corr[j] for j in top5])
    expected = an.rank_by_latents(M, guided.latents.weights(), top_k=48, scoring="normalized", doc_ids=r.doc_ids)
    assert [d.doc_id for d in guided.ranking.docs] == [d.doc_id for d in expected.docs]

    sae = rank_by_property(data.ws, r, "praise", n_latents=5, top_k=48)
    hybrid = rank_by_property(data.ws, r, "praise", method="hybrid", n_latents=5, top_k=48, dense=True)
    assert hybrid.ranking.total == 48 and hybrid.dense_ranking is not None
    assert hybrid.latents.weights() == sae.latents.weights()
    assert hybrid.guided_latents is not None and hybrid.guided_latents.weights() == guided.latents.weights()
    sae_rank = {d.row: i for i, d in enumerate(sae.ranking.docs)}
    guided_rank = {d.row: i for i, d in enumerate(guided.ranking.docs)}
    dense_rank = {d.row: i for i, d in enumerate(dense.ranking.docs)}
    fused = {
        row: 1 / (61 + dense_rank[row])
        + (1 / (61 + sae_rank[row]) if row in sae_rank else 0.0)
        + (1 / (61 + guided_rank[row]) if row in guided_rank else 0.0)
        for row in range(48)
    }
    assert [d.row for d in hybrid.ranking.docs] == sorted(fused, key=lambda row: (-fused[row], row))
    text = hybrid.to_text()
    assert "fusion" in text and "Dense baseline" in text and "Guided by how documents look like the query" in text
    with pytest.raises(InputError, match="needs a query"):
        rank_by_property(data.ws, r, "", method="sae-guided", positives=[str(r.doc_ids[0])])


def test_retrieve_by_positive_examples_alone_and_refusals(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    M = matrix(data)
    ids = meta(data)["doc_id"].to_numpy()
    firing = np.flatnonzero(M[:, praise].toarray().ravel() > 0)[:4]
    res = ops.retrieve(data.ws, RetrieveRequest.build(dataset="reviews", query="", positives=list(ids[firing])))
    assert res.latents.n_positives == len(firing) and res.latents.latents
    assert all(p.lift is not None and p.lift > 1 for p in res.latents.latents)
    refined = ops.retrieve(
        data.ws, RetrieveRequest.build(dataset="reviews", query="praise", positives=[ids[firing[0]]])
    )
    assert refined.latents.n_positives == 1
    with pytest.raises(InputError, match="positive example documents"):
        RetrieveRequest.build(dataset="reviews", query="  ")
    with pytest.raises(InputError, match="needs a property in words"):
        RetrieveRequest.build(dataset="reviews", query="", method="hybrid", positives=[str(ids[0])])
    with pytest.raises(InputError, match="not in"):
        ops.retrieve(data.ws, RetrieveRequest.build(dataset="reviews", query="praise", positives=["nope"]))
    with pytest.raises(InputError):
        RetrieveRequest.build(dataset="reviews", query="praise", method="bm25")


def test_cluster_on_latents_assigns_every_document(data: Data) -> None:
    latents = list(data.labelled)[:6]
    res = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", latents=latents, k=3))
    assert res.n_docs == 48 and len(res.assignment) == 48 and res.k == 3 and res.k_chosen_by == "given"
    assert set(res.assignment) <= {-1, 0, 1, 2}
    assert sum(c.size for c in res.clusters) + res.n_unassigned == 48
    for c in res.clusters:
        assert c.size == sum(1 for a in res.assignment if a == c.cluster)
    selected = [s.latent for s in res.selected_latents]
    assert set(selected) <= set(latents) and selected
    M = matrix(data)
    silent = ~(M[:, selected].toarray() > 0).any(axis=1)
    assert [a == -1 for a in res.assignment] == silent.tolist()
    assert res.n_unassigned == int(silent.sum())

    chosen = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", latents=latents, where="half == 'first'"))
    assert chosen.n_docs == 24 and len(chosen.assignment) == 24 and chosen.k_chosen_by in ("silhouette", "single")
    with pytest.raises(InputError, match="at least 4"):
        ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", latents=latents, where="pair == 1"))


def test_cluster_on_an_axis_in_words_uses_the_matching_latent(data: Data) -> None:
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    r = resolve(data.ws, DocSet("reviews"))
    res = cluster_resolved(data.ws, r, axis="praise", k=2)
    assert res.selected_latents[0].latent == praise
    assert len(res.assignment) == 48


def test_cluster_by_classes_is_guided_by_the_documents_similarity_to_each_class(data: Data) -> None:
    classes = ["a plot summary of a film", "an opinion about a film"]
    res = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", classes=classes, guide="dense"))
    assert res.k == 2 and res.k_chosen_by == "given" and len(res.assignment) == 48 and len(res.placed) == 48
    assert sorted(c.axis_class or "" for c in res.clusters) == sorted(classes)
    # the features are the latents whose firing correlates with a class's margin, recomputed here
    vectors = dataset_vectors(data.ws, "reviews")
    margins = an.class_margins(vectors @ encode(classes).T)
    corr = an.firing_correlations(matrix(data), margins)
    for s in res.selected_latents:
        assert s.relevance == pytest.approx(corr[s.latent].max()) and s.relevance > 0
    truth = (meta(data)["category"] == "plot").to_numpy()
    plot_cluster = next(c.cluster for c in res.clusters if c.axis_class == classes[0])
    assert an.adjusted_rand(truth, np.asarray(res.placed) == plot_cluster) > 0.5
    three = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", classes=classes, k=3, where="half == 'first'"))
    assert three.k == 3 and three.n_docs == 24
    with pytest.raises(InputError, match="alone"):
        ClusterRequest.build(dataset="reviews", classes=classes, axis="tone")
    with pytest.raises(InputError, match="give classes too"):
        ClusterRequest.build(dataset="reviews", axis="tone", guide="labels")
    with pytest.raises(InputError, match="differ"):
        ClusterRequest.build(dataset="reviews", classes=["Plot", "plot "])
    with pytest.raises(InputError, match="blank"):
        ClusterRequest.build(dataset="reviews", classes=["plot", "  "])
    with pytest.raises(InputError):
        ClusterRequest.build(dataset="reviews", classes=["only one"])


def test_the_default_guide_adds_the_label_matched_latents_to_the_dense_similarity(data: Data) -> None:
    classes = ["praise", "a plot summary of a film"]
    r = resolve(data.ws, DocSet("reviews"))
    res = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", classes=classes))
    assert ClusterRequest.build(dataset="reviews", classes=classes).guide == "both"
    # the guide recomputed: per class, each document's best-matching firing latent among the 30 whose
    # descriptions match the class, next to the dense cosine; both standardised and added
    M = matrix(data)
    lv, cv = label_embeddings(data.ws, r.embedding), context_embeddings(data.ws, r.embedding)
    label_cols = []
    for q in encode(classes):
        matched = an.select_property_latents(lv, q, context_embeddings=cv, context_weight=an.CONTEXT_WEIGHT, top_n=30)
        col = np.zeros(M.shape[0])
        for p in matched.latents:
            col = np.where(M[:, p.latent].toarray().ravel() > 0, np.maximum(col, p.weight), col)
        label_cols.append(col)
    L = np.stack(label_cols, axis=1)
    D = dataset_vectors(data.ws, "reviews") @ encode(classes).T

    def z(S: np.ndarray) -> np.ndarray:
        C = S - S.mean(axis=0)
        return C / np.where(C.std(axis=0) > 1e-12, C.std(axis=0), 1.0)

    np.testing.assert_allclose(class_guide(data.ws, r, classes), z(D) + z(L), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(class_guide(data.ws, r, classes, "labels"), L, rtol=1e-4, atol=1e-5)
    corr = an.firing_correlations(M, an.class_margins(z(D) + z(L)))
    assert res.selected_latents
    for s in res.selected_latents:
        assert s.relevance == pytest.approx(corr[s.latent].max()) and s.relevance > 0
    # the latent labelled "praise" is the praise class's best match: where it fires, the guide is its weight
    praise = next(k for k, v in data.labelled.items() if v == "praise")
    best = max(
        an.select_property_latents(
            lv, encode(["praise"])[0], context_embeddings=cv, context_weight=an.CONTEXT_WEIGHT, top_n=30
        ).latents,
        key=lambda p: p.weight,
    )
    assert best.latent == praise
    assert np.all(L[M[:, praise].toarray().ravel() > 0, 0] == pytest.approx(best.weight))
    labels_only = ops.cluster(data.ws, ClusterRequest.build(dataset="reviews", classes=classes, guide="labels"))
    assert labels_only.k == 2 and len(labels_only.placed) == 48


def test_correlations_across_two_document_sets_count_matched_rows(data: Data) -> None:
    """Prompts (first half, one per pair) against responses (every review, two per pair): matched rows."""
    req = CorrelationsRequest.build(
        dataset="reviews", where="half == 'first'", against="reviews", join_on="pair", min_cooc=3, top_k=5
    )
    res = ops.correlations(data.ws, req)
    assert res.kind == "cross" and res.cross is not None and res.cooccurrence is None
    cross = res.cross
    assert (cross.n_rows, cross.n_x_texts) == (48, 24)
    M, m = matrix(data), meta(data)
    first = {int(p): r for r, p in enumerate(m["pair"]) if m["half"].iloc[r] == "first"}
    ix = np.array([first[int(p)] for p in m["pair"]])
    iy = np.arange(48)
    assert cross.pairs and cross.tested >= len(cross.pairs)
    for pair in cross.pairs:
        fx, fy = fires(M, ix, pair.latent_x), fires(M, iy, pair.latent_y)
        assert (pair.count_x, pair.count_y, pair.count_xy) == (int(fx.sum()), int(fy.sum()), int((fx & fy).sum()))
        assert pair.q <= 0.05 and pair.count_xy >= 3
    assert "optimistic" in res.to_text()

    one_to_one = ops.correlations(
        data.ws,
        CorrelationsRequest.build(
            dataset="reviews",
            where="half == 'first'",
            against="reviews",
            where_against="half == 'second'",
            join_on="pair",
            min_cooc=2,
        ),
    )
    assert one_to_one.cross is not None and (one_to_one.cross.n_rows, one_to_one.cross.n_x_texts) == (24, 24)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"against": "reviews", "join_on": "pair"}, "repeats"),
        ({"where": "half == 'first'", "against": "inject", "join_on": "pair"}, "no column"),
        ({"against": "reviews"}, "go together"),
        ({"where_against": "half == 'x'"}, "give against"),
        ({"against": "reviews", "join_on": "pair", "column": "category"}, "do not apply"),
    ],
)
def test_correlations_across_datasets_refuse_bad_requests(data: Data, values: dict[str, str], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        ops.correlations(data.ws, CorrelationsRequest.build(dataset="reviews", **values))


def test_dense_vectors_are_cached_per_dataset_content(data: Data) -> None:
    from saescope.ops.encoder import dataset_vectors, encode
    from saescope.paths import cache_home

    info = data.ws.dataset("inject").info
    path = cache_home() / "dense" / f"minilm-{info.fingerprint}-{info.n_docs}.npy"
    path.unlink(missing_ok=True)
    first = dataset_vectors(data.ws, "inject")
    texts = [str(t) for t in data.ws.dataset("inject").documents(["text"])["text"]]
    assert np.allclose(first, encode(texts), atol=1e-5) and path.is_file()
    path.write_bytes(b"not an array")  # a damaged cache is rebuilt, not trusted
    assert np.allclose(dataset_vectors(data.ws, "inject"), first)
    assert np.load(path).shape == first.shape
