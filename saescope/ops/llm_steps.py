"""The operations that use an LLM: label latents, summarise a diff into hypotheses, verify a hypothesis.

They resolve documents with the same resolver as the analyses (:mod:`saescope.ops.docsets`), so a
hypothesis's counts match the diff it came from; prompts, parsing and result models are :mod:`saescope.llm`'s.
Blocking work (matrices, the reader) runs through ``run_sync``, off the event loop.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from saescope.errors import InputError
from saescope.labels import FeatureLabel, LatentLabels
from saescope.llm.autointerp import (
    LabelingResult,
    LatentExamples,
    LatentLabelResult,
    RunSync,
    detection_request,
    label_request,
    parse_label,
    run_in_thread,
    score_detection,
)
from saescope.llm.hypotheses import (
    DiffSummary,
    Hypothesis,
    diff_latents,
    parse_hypotheses,
    relabel_request,
    summary_request,
)
from saescope.llm.ledger import MeteredProvider
from saescope.llm.providers import LLMProvider
from saescope.llm.quoting import parse_int_list, parse_json_object
from saescope.llm.verify import JUDGE_BATCH, DocVerdict, JudgeResult, Verification, judge_requests, proportion_stats
from saescope.ops.analyses import AnyDiff, run_diff
from saescope.ops.docsets import Sides, any_fires, labels_for, resolve_sides, texts_of
from saescope.ops.features import feature_details
from saescope.ops.requests import FeatureRequest, LabelRequest, SummariseRequest, VerifyRequest
from saescope.workspace import Workspace


def collect_examples(
    ws: Workspace,
    dataset: str,
    latent: int,
    *,
    sae: str | None = None,
    n_examples: int = 5,
    n_negative: int = 3,
    n_held_out: int = 6,
    token_evidence: bool = True,
    seed: int = 0,
) -> LatentExamples:
    """Top documents of ``latent`` (firing tokens marked), random silent ones, and a held-out mix.

    Raises:
        InputError: the latent is outside the SAE.
        NotFoundError: unknown dataset or no embedding.
    """
    emb, M = ws.matrix(dataset, sae)
    n, d = M.shape
    if not 0 <= latent < d:
        raise InputError(f"latent {latent} is outside the SAE (0..{d - 1})")
    col = M.getcol(latent).tocoo()
    keep = col.data > 0
    rows, vals = col.row[keep].astype(np.int64), col.data[keep]
    rows = rows[np.lexsort((rows, -vals))]
    frame = ws.dataset(dataset).documents(["text"])
    ids = frame["doc_id"].astype(str).to_numpy()
    texts = frame["text"].astype(str).to_numpy()
    top = rows[:n_examples]
    if token_evidence and len(top):
        details = feature_details(ws, FeatureRequest(dataset=dataset, latent=latent, n_top=n_examples, sae=sae))
        examples = [(ev.doc_id, ev.text) for ev in details.evidence]
    else:
        examples = [(ids[r], texts[r]) for r in top]
    rng = np.random.default_rng([seed, latent])
    rest = rows[n_examples:]
    n_pos = min((n_held_out + 1) // 2, len(rest))
    pos = rng.choice(rest, n_pos, replace=False) if n_pos else np.zeros(0, np.int64)
    silent = np.setdiff1d(np.arange(n), rows)
    picked = rng.choice(silent, min(len(silent), n_negative + n_held_out // 2), replace=False)
    held = [(ids[r], texts[r], True) for r in pos] + [(ids[r], texts[r], False) for r in picked[n_negative:]]
    held = [held[i] for i in rng.permutation(len(held))]
    return LatentExamples(
        latent=latent,
        previous_label=labels_for(ws, emb).text(latent),
        n_firing=len(rows),
        examples=examples,
        negatives=[(ids[r], texts[r]) for r in picked[:n_negative]],
        held_out=held,
    )


async def label_latents(
    ws: Workspace,
    req: LabelRequest,
    provider: LLMProvider,
    *,
    n_negative: int = 3,
    seed: int = 0,
    run_sync: RunSync[Any] = run_in_thread,
) -> LabelingResult:
    """Label ``req.latents`` from their documents in ``req.dataset`` and score each label on held-out documents.

    Two batches of prompts: one label per latent, then one detection test per label. Latents firing in
    fewer than 2 documents are skipped. With ``save``, labels go to the data root's label file for the
    SAE (``source="llm"``, the model and the score), next to the shipped labels.

    Raises:
        InputError: no latents, too many, or one outside the SAE.
        LLMUnavailableError, LLMError: no LLM, or it failed.
    """
    dataset, sae = req.dataset, req.sae
    unique = list(dict.fromkeys(int(i) for i in req.latents))
    metered = provider if isinstance(provider, MeteredProvider) else MeteredProvider(provider)

    def collect() -> tuple[str, list[LatentExamples]]:
        emb = ws.embedding(dataset, sae)
        exs = [
            collect_examples(
                ws,
                dataset,
                i,
                sae=sae,
                n_examples=req.n_examples,
                n_negative=n_negative,
                n_held_out=req.n_held_out,
                token_evidence=req.token_evidence,
                seed=seed,
            )
            for i in unique
        ]
        return str(emb.manifest.spec.sae.get("id")), exs

    sae_id, examples = await run_sync(collect)
    usable = [ex for ex in examples if ex.n_firing >= 2]
    label_replies = await metered.complete([label_request(ex) for ex in usable]) if usable else []
    labels = {ex.latent: parse_label(r.text) for ex, r in zip(usable, label_replies, strict=True)}
    models = {ex.latent: r.model for ex, r in zip(usable, label_replies, strict=True)}
    testable = [ex for ex in usable if labels[ex.latent] and ex.held_out]
    det_replies = (
        await metered.complete([detection_request(str(labels[ex.latent]), ex) for ex in testable]) if testable else []
    )
    scores = {ex.latent: score_detection(r.text, ex) for ex, r in zip(testable, det_replies, strict=True)}

    results = []
    for ex in examples:
        label = labels.get(ex.latent)
        det = scores.get(ex.latent)
        note = None
        if ex.n_firing < 2:
            note = f"fires in {ex.n_firing} document(s) of {dataset}; too few to label"
        elif label is None:
            note = "the LLM gave no usable label"
        elif det is None or det.balanced_accuracy is None:
            note = "not scored: too few held-out documents of both kinds"
        results.append(
            LatentLabelResult(
                latent=ex.latent,
                label=label,
                score=det.balanced_accuracy if det else None,
                detection=det,
                previous_label=ex.previous_label,
                n_firing=ex.n_firing,
                note=note,
            )
        )
    saved_to = None
    if req.save and any(r.label for r in results):
        saved_to = await run_sync(lambda: save_labels(ws, dataset, sae, results, models))
    return LabelingResult(dataset=dataset, sae_id=sae_id, saved_to=saved_to, results=results, usage=metered.usage())


def save_labels(
    ws: Workspace, dataset: str, sae: str | None, results: list[LatentLabelResult], models: dict[int, str]
) -> str:
    """Add the labelled results to the SAE's saved labels (through :meth:`Workspace.import_labels`)."""
    sae_obj = ws.sae_of(ws.embedding(dataset, sae))
    records = [
        LatentLabels(
            latent=r.latent,
            labels=[FeatureLabel(source="llm", text=r.label, score=r.score, model=models.get(r.latent))],
        )
        for r in results
        if r.label
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llm-labels.jsonl"
        path.write_text("".join(rec.model_dump_json() + "\n" for rec in records), encoding="utf-8")
        ws.import_labels(sae_obj, path)
    return str(ws.user_labels_path(sae_obj.id))


async def summarise_diff(
    ws: Workspace,
    req: SummariseRequest,
    provider: LLMProvider,
    *,
    diff: AnyDiff | None = None,
    run_sync: RunSync[Any] = run_in_thread,
) -> DiffSummary:
    """Hypotheses about how A differs from B from the top ``req.n_latents`` of the diff of ``req``'s sides
    (or of ``diff``, a diff of the same sides that the caller already has, e.g. filtered).

    Raises:
        InputError, NotFoundError: bad sides (as :func:`~saescope.ops.analyses.run_diff`), or a diff without rows.
        LLMUnavailableError, LLMError: no LLM, or it failed.
    """
    spec, n_hypotheses = req.spec, req.n_hypotheses
    if diff is None:
        options = {"min_support": req.min_support, "direction": req.direction, "top_k": req.n_latents}
        diff = await run_sync(lambda: run_diff(ws, spec, **options))
    rows, name_a, name_b, _, _ = diff_latents(diff)
    rows = rows[: req.n_latents]
    if not rows:
        raise InputError(
            "the diff has no latents to summarise (none passed min_support, or none differ in the "
            "requested direction); lower min_support or compare larger sets"
        )
    metered = provider if isinstance(provider, MeteredProvider) else MeteredProvider(provider)
    sides: Sides = await run_sync(lambda: resolve_sides(ws, spec))
    if req.relabel:

        def fetch() -> tuple[dict[str, str], dict[str, str]]:
            ids_a = sides.a.doc_ids_for(sorted({i for r in rows for i in r.examples_a}))
            ids_b = sides.b.doc_ids_for(sorted({i for r in rows for i in r.examples_b}))
            ta, tb = texts_of(ws, sides.a.dataset, ids_a), texts_of(ws, sides.b.dataset, ids_b)
            if sides.a.keys is not None and sides.b.keys is not None:
                back = dict(zip(sides.a.doc_ids.astype(str), sides.a.keys.astype(str), strict=True))
                ta = {back[k]: v for k, v in ta.items() if k in back}
                back = dict(zip(sides.b.doc_ids.astype(str), sides.b.keys.astype(str), strict=True))
                tb = {back[k]: v for k, v in tb.items() if k in back}
            return ta, tb

        texts_a, texts_b = await run_sync(fetch)
        replies = await metered.complete([relabel_request(r, texts_a, texts_b, name_a, name_b) for r in rows])
        rows = [
            r.model_copy(update={"context_label": parse_label(rep.text)}) for r, rep in zip(rows, replies, strict=True)
        ]
    answer = (await metered.complete([summary_request(rows, name_a, name_b, n_hypotheses)]))[0]
    by_id = {r.latent: r for r in rows}
    parsed, dropped = parse_hypotheses(answer.text, set(by_id), n_hypotheses)
    n_a, n_b = sides.a.X.shape[0], sides.b.X.shape[0]

    def count() -> list[tuple[int, int]]:
        return [(int(any_fires(sides.a.X, ids).sum()), int(any_fires(sides.b.X, ids).sum())) for _, ids in parsed]

    counts = await run_sync(count)
    hypotheses = [
        Hypothesis(
            text=text,
            latents=ids,
            count_a=ca,
            count_b=cb,
            freq_a=ca / n_a,
            freq_b=cb / n_b,
            cited=[by_id[i] for i in ids],
        )
        for (text, ids), (ca, cb) in zip(parsed, counts, strict=True)
    ]
    return DiffSummary(
        mode=spec.mode,
        name_a=name_a,
        name_b=name_b,
        n_a=n_a,
        n_b=n_b,
        latents=rows,
        hypotheses=hypotheses,
        dropped_citations=dropped,
        usage=metered.usage(),
    )


async def verify_hypothesis(
    ws: Workspace,
    req: VerifyRequest,
    provider: LLMProvider | None = None,
    *,
    seed: int = 0,
    run_sync: RunSync[Any] = run_in_thread,
) -> Verification:
    """Fraction of A's and B's documents where any of ``req.latents`` fires, with a two-proportion test; with
    ``req.judge``, also ``provider`` as a judge of ``req.n_judge`` random documents per side (shuffled together).

    Raises:
        InputError: no latents, one outside the SAE, a judge without a hypothesis, or bad n_judge.
        LLMUnavailableError, LLMError: the judge was asked for but no LLM is available, or it failed.
    """
    ids = list(dict.fromkeys(int(i) for i in req.latents))
    spec, hypothesis, n_judge = req.spec, req.hypothesis, req.n_judge
    if req.judge and provider is None:
        raise InputError("judge=true needs an LLM; configure one, or verify without the judge")
    judge_llm = provider if req.judge else None

    def measure() -> tuple[Sides, np.ndarray, np.ndarray]:
        sides = resolve_sides(ws, spec)
        sides.check_latents(ids)
        return sides, any_fires(sides.a.X, ids), any_fires(sides.b.X, ids)

    sides, fa, fb = await run_sync(measure)
    na, nb, ca, cb = len(fa), len(fb), int(fa.sum()), int(fb.sum())
    st = proportion_stats(ca, na, cb, nb)
    judge = None
    usage = None
    if judge_llm is not None:
        metered = judge_llm if isinstance(judge_llm, MeteredProvider) else MeteredProvider(judge_llm)
        rng = np.random.default_rng(seed)
        pick_a = rng.choice(na, min(n_judge, na), replace=False)
        pick_b = rng.choice(nb, min(n_judge, nb), replace=False)
        picked: list[tuple[Literal["a", "b"], int]] = [("a", int(i)) for i in pick_a] + [("b", int(i)) for i in pick_b]
        picked = [picked[i] for i in rng.permutation(len(picked))]

        def fetch() -> list[tuple[str, str]]:
            out = []
            by_side = {"a": sides.a, "b": sides.b}
            cache = {
                s: texts_of(ws, by_side[s].dataset, [str(by_side[s].doc_ids[i]) for t, i in picked if t == s])
                for s in ("a", "b")
            }
            for s, i in picked:
                doc = str(by_side[s].doc_ids[i])
                out.append((doc, cache[s].get(doc, "")))
            return out

        docs = await run_sync(fetch)
        replies = await metered.complete(judge_requests(str(hypothesis), docs))
        said: set[int] = set()
        for k, reply in enumerate(replies):
            size = min(JUDGE_BATCH, len(docs) - k * JUDGE_BATCH)
            obj = parse_json_object(reply.text) or {}
            said |= {k * JUDGE_BATCH + n - 1 for n in parse_int_list(obj.get("matches"), 1, size)}
        verdicts = [
            DocVerdict(side=s, doc_id=doc, judged=j in said, latents_fire=bool((fa if s == "a" else fb)[i]))
            for j, ((s, i), (doc, _)) in enumerate(zip(picked, docs, strict=True))
        ]
        ja = [v for v in verdicts if v.side == "a"]
        jb = [v for v in verdicts if v.side == "b"]
        ya, yb = sum(v.judged for v in ja), sum(v.judged for v in jb)
        jst = proportion_stats(ya, len(ja), yb, len(jb)) if ja and jb else {"p": 1.0}
        judge = JudgeResult(
            n_a=len(ja),
            yes_a=ya,
            n_b=len(jb),
            yes_b=yb,
            freq_a=ya / max(len(ja), 1),
            freq_b=yb / max(len(jb), 1),
            p=jst["p"],
            agreement=sum(v.judged == v.latents_fire for v in verdicts) / max(len(verdicts), 1),
            verdicts=verdicts,
        )
        usage = metered.usage()
    labels = [sides.labels.text(i) if hasattr(sides.labels, "text") else str(i) for i in ids]
    return Verification(
        hypothesis=hypothesis,
        name_a=sides.a.name,
        name_b=sides.b.name,
        latents=ids,
        labels=labels,
        n_a=na,
        n_b=nb,
        count_a=ca,
        count_b=cb,
        freq_a=ca / na,
        freq_b=cb / nb,
        diff=ca / na - cb / nb,
        judge=judge,
        usage=usage,
        **st,
    )
