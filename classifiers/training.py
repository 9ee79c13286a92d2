"""Training a routing model from the project corpus (+ corrections) or a generic model from any labelled CSV."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from classifiers.artifact import make_artifact
from classifiers.danger import load_danger
from classifiers.data import Example, content_hash, split
from classifiers.evaluation import report
from classifiers.model import FULL_SPACE, SearchSpace, train
from classifiers.router import Router
from classifiers.screen import ScreenData, screen_data, train_screen
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import analyze, tokenizer

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Options:
    space: SearchSpace = FULL_SPACE
    folds: int = 5
    seed: int = 0
    progress: object = None  # a tqdm-like factory, or None


@dataclass
class Checked:
    rows: list[Example]
    skipped: list[tuple[Example, str]] = field(default_factory=list)


def check_routing_rows(rows, taxonomy: Taxonomy) -> Checked:
    """Keep the rows whose labels the taxonomy knows; an unknown urgency only loses its urgency."""
    out = Checked([])
    for ex in rows:
        if ex.category is not None and ex.category not in taxonomy.categories:
            out.skipped.append((ex, f"unknown category {ex.category!r}"))
            continue
        if ex.department is not None and ex.department not in taxonomy.departments:
            out.skipped.append((ex, f"unknown department {ex.department!r}"))
            continue
        if ex.category is None and ex.department is None:
            out.skipped.append((ex, "neither category nor department"))
            continue
        if ex.urgency is not None and ex.urgency not in taxonomy.urgencies:
            ex = Example(ex.text, ex.category, ex.department, None, ex.label, ex.source)
        out.rows.append(ex)
    return out


def _analyze_all(texts: list[str], progress, desc: str) -> list:
    tokenizer()
    it = progress(texts, desc=desc, unit="text") if progress else texts
    return [analyze(t) for t in it]


def evaluate_routing(router: Router, heldout: list[Example]) -> dict:
    if not heldout:
        return {"n": 0}
    preds = router.predict_many([ex.text for ex in heldout])
    cat = report([ex.category for ex in heldout], [p.category for p in preds])
    dep = report([ex.department for ex in heldout], [p.department for p in preds])
    both = [ex.category == p.category and ex.department == p.department for ex, p in zip(heldout, preds)]
    urg_rows = [(ex.urgency, p.urgency) for ex, p in zip(heldout, preds) if ex.urgency]
    urg = report([t for t, _ in urg_rows], [p for _, p in urg_rows]) if urg_rows else None
    auto = {}
    for thr in THRESHOLDS:
        sel = [ok for ok, p in zip(both, preds) if p.confidence >= thr]
        auto[str(thr)] = {"share": len(sel) / len(preds), "accuracy": (sum(sel) / len(sel)) if sel else None}
    out = {
        "n": len(heldout),
        "category_accuracy": cat["accuracy"],
        "category_macro_f1": cat["macro_f1"],
        "department_accuracy": dep["accuracy"],
        "department_macro_f1": dep["macro_f1"],
        "routing_accuracy": sum(both) / len(both),
        "auto_dispatch": auto,
    }
    if urg:
        out["urgency_accuracy"] = urg["accuracy"]
        out["urgency_macro_f1"] = urg["macro_f1"]
    return out


def evaluate_screen(router: Router, data: ScreenData) -> dict:
    """The not-a-request screen on held-out rows: requests wrongly refused (the corpus's held-out requests, the
    held-out short requests) and non-requests caught, overall and by reason."""
    def refused(rows):
        preds = router.predict_many([ex.text for ex in rows]) if rows else []
        return [ex.text for ex, p in zip(rows, preds) if not p.request], preds

    out = {}
    for name, rows in (("requests", data.heldout_requests), ("short_requests", data.heldout_short)):
        texts, _ = refused(rows)
        out[name] = {"n": len(rows), "refused": len(texts), "share": len(texts) / len(rows) if rows else None,
                     "examples": texts[:10]}
    junk = data.heldout_not_requests
    _, preds = refused(junk)
    by_reason: dict[str, list[int]] = {}
    for ex, p in zip(junk, preds):
        by_reason.setdefault(ex.label, [0, 0])[0 if p.request else 1] += 1
    caught = sum(1 for p in preds if not p.request)
    out["not_requests"] = {"n": len(junk), "caught": caught, "share": caught / len(junk) if junk else None,
                           "by_reason": {k: {"n": a + b, "caught": b} for k, (a, b) in sorted(by_reason.items())},
                           "missed": [ex.text for ex, p in zip(junk, preds) if p.request][:10]}
    return out


def train_routing(corpus: list[Example], extras: list[Example] = (), *, options: Options | None = None,
                  taxonomy: Taxonomy | None = None, screen: ScreenData | None = None) -> tuple[Router, list[Example], dict]:
    """Train on the corpus's training split plus the extra examples (corrections, never held out);
    measure on the corpus's held-out split. The not-a-request screen is trained beside it (classifiers/screen.py;
    `screen` overrides its rows, default corpus/not-requests and corpus/short-requests.txt) and kept in the same
    artifact. Returns the router, the held-out rows and a summary."""
    options = options or Options()
    taxonomy = taxonomy or load_taxonomy()
    checked = check_routing_rows(corpus, taxonomy)
    checked_extra = check_routing_rows(list(extras), taxonomy)
    train_rows, heldout = split(checked.rows)
    train_rows = train_rows + checked_extra.rows
    t0 = time.perf_counter()
    docs = _analyze_all([ex.text for ex in train_rows], options.progress, "tokenising")
    targets = {
        "category": [ex.category for ex in train_rows],
        "department": [ex.department for ex in train_rows],
        "urgency": [ex.urgency for ex in train_rows],
    }
    if len({u for u in targets["urgency"] if u}) < 2:
        del targets["urgency"]
    result = train(docs, targets, primary=("category", "department"), space=options.space, folds=options.folds,
                   seed=options.seed, progress=options.progress)
    screen = screen or screen_data(train_rows, heldout)
    screen_model = train_screen(screen, space=options.space, folds=options.folds, seed=options.seed,
                                progress=options.progress)
    seconds = time.perf_counter() - t0
    metrics = {
        "cv": result.cv,
        "train_rows": len(train_rows),
        "corpus_rows": len(checked.rows),
        "extra_examples": len(checked_extra.rows),
        "skipped_rows": len(checked.skipped) + len(checked_extra.skipped),
        "train_seconds": round(seconds, 2),
    }
    danger = load_danger()
    art = make_artifact("routing", result.featurizer, result.models, metrics,
                        corpus_hash=content_hash(checked.rows + checked_extra.rows), taxonomy=taxonomy,
                        danger=danger.data,
                        extra={"heldout_percent": 20, "params": {k: m.params for k, m in result.models.items()},
                               "screen": screen_model.data})
    router = Router(art, taxonomy, danger)
    metrics["heldout"] = evaluate_routing(router, heldout)
    metrics["screen"] = {"threshold": screen_model.threshold, "train_rows": screen_model.data["train_rows"],
                         "cv": screen_model.data["cv"], "heldout": evaluate_screen(router, screen)}
    router.metrics = metrics
    summary = {"skipped": checked.skipped + checked_extra.skipped, "heldout": heldout, "screen": screen}
    return router, heldout, summary


def train_generic(examples: list[Example], *, options: Options | None = None, source: dict | None = None) -> Router:
    """A model of another label set: trained on every row; its figures are cross-validation figures."""
    options = options or Options()
    t0 = time.perf_counter()
    docs = _analyze_all([ex.text for ex in examples], options.progress, "tokenising")
    result = train(docs, {"label": [ex.label for ex in examples]}, space=options.space, folds=options.folds,
                   seed=options.seed, progress=options.progress)
    metrics = {"cv": result.cv, "train_rows": len(examples), "train_seconds": round(time.perf_counter() - t0, 2)}
    art = make_artifact("generic", result.featurizer, result.models, metrics,
                        corpus_hash=content_hash(examples), taxonomy=None,
                        extra={"source": source or {}, "params": {k: m.params for k, m in result.models.items()}})
    try:
        taxonomy = load_taxonomy()
    except (OSError, ValueError, KeyError):
        taxonomy = None
    return Router(art, taxonomy)

