"""Benchmark of the routing classifier on real data and its speed.

    python bench/classifier.py [DATASET_DIR] [--cv-quick] [--skip-cv] [--only-screen]

DATASET_DIR defaults to ../shared/datasets/gov-messages relative to the repository (495 real resident messages,
7 labels, fixed train/test split; README there). Prints, next to the reference measured on the same data
(TF-IDF words 1–2 + chars 1–3, sublinear tf, LinearSVC C=1: accuracy 0.788, macro-F1 0.755):
  * accuracy and macro-F1 on test.csv of the model trained on train.csv exactly as `sidan classify train
    --data train.csv --text-column title,body --label-column label` does (settings chosen by CV on train);
  * the mean of 5-fold stratified cross-validation over messages.csv (each fold repeats the whole training,
    its settings search included, on its own training part), for our pipeline and the reference;
  * training time; single-message predict latency (median, p99; model loaded) and batch throughput,
    on the gov messages and on the project corpus's short requests; jieba's own tokenisation rate on the
    same texts (with the model's HMM setting, and with jieba's defaults) and the ratios (jieba is the ceiling:
    every prediction tokenises its text);
  * the not-a-request screen of the live routing model (var/models/router.pkl): the share of real requests it
    wrongly refuses on the corpus's held-out requests, on the held-out short requests and on every gov message, and
    the share of the held-out non-requests (corpus/not-requests) it catches, by reason;
  * the danger list (corpus/danger.toml): precision and recall on corpus/danger-tests.toml (and whether the kind is
    right), and its agreement with the corpus rows labelled 急难事.
Goals: single predict p99 < 2 ms, batch >= 5,000 messages/s on one core; requests wrongly refused <= 1 %.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE = {"accuracy": 0.788, "macro_f1": 0.755}


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def text_of(row: dict[str, str]) -> str:
    return f"{row['title']} {row['body']}"  # as --text-column title,body joins them


def reference_pipeline():
    import jieba
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    def words(text):
        return [w for w in jieba.lcut(text) if w.strip()]

    return make_pipeline(
        make_union(
            TfidfVectorizer(tokenizer=words, token_pattern=None, lowercase=False, ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        ),
        LinearSVC(C=1),
    )


def latency(fn, texts: list[str], rounds: int = 3) -> tuple[float, float]:
    for t in texts[:20]:
        fn(t)  # warm caches
    samples = []
    for _ in range(rounds):
        for t in texts:
            start = time.perf_counter()
            fn(t)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def throughput(fn, texts: list[str], min_seconds: float = 1.0) -> float:
    n, start = 0, time.perf_counter()
    while True:
        fn(texts)
        n += len(texts)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def speed_block(name: str, router, texts: list[str]) -> None:
    from classifiers.text import model_text, normalize, tokenizer

    tok = tokenizer()
    hmm = router._hmm
    med, p99 = latency(router.predict, texts)
    batch = throughput(router.predict_many, texts)
    # what every prediction does first: jieba on the normalised text, as the model was trained (HMM on or off)
    prepared = [model_text(normalize(t)) for t in texts]
    jieba_med, jieba_p99 = latency(lambda t: tok.lcut(t, HMM=hmm), prepared)
    jieba_rate = throughput(lambda ts: [tok.lcut(t, HMM=hmm) for t in ts], prepared)
    jieba_default = throughput(lambda ts: [tok.lcut(t) for t in ts], prepared)
    chars = statistics.mean(len(t) for t in texts)
    print(f"\n[{name}] {len(texts)} texts, mean {chars:.0f} characters, max {max(len(t) for t in texts)}")
    print(f"  single predict latency: median {med:.2f} ms, p99 {p99:.2f} ms   (goal p99 < 2 ms; "
          f"jieba alone: median {jieba_med:.2f} ms, p99 {jieba_p99:.2f} ms)")
    print(f"  batch throughput (predict_many): {batch:,.0f} msg/s   (goal >= 5,000 msg/s)")
    print(f"  jieba alone on the same texts (HMM {'on' if hmm else 'off'}, as the model): {jieba_rate:,.0f} msg/s"
          f"  → pipeline/jieba = {batch / jieba_rate:.2f}; jieba.lcut with its defaults (HMM on): "
          f"{jieba_default:,.0f} msg/s → pipeline/that = {batch / jieba_default:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "gov-messages"))
    parser.add_argument("--cv-quick", action="store_true", help="one default setting inside the 5 CV folds")
    parser.add_argument("--skip-cv", action="store_true", help="no 5-fold cross-validation over messages.csv")
    parser.add_argument("--only-screen", action="store_true",
                        help="only the not-a-request screen and the danger list (no training, no speed)")
    args = parser.parse_args(argv)
    data = Path(args.dataset)
    if not (data / "train.csv").exists():
        print(f"error: no gov-messages dataset at {data}", file=sys.stderr)
        return 2

    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from classifiers import Router
    from classifiers.data import Example
    from classifiers.model import FULL_SPACE, QUICK_SPACE
    from classifiers.text import tokenizer
    from classifiers.training import Options, train_generic

    tokenizer()
    train, test, everything = read(data / "train.csv"), read(data / "test.csv"), read(data / "messages.csv")
    if args.only_screen:
        screen_block(live_router(), [text_of(r) for r in everything])
        danger_block()
        return 0
    print(f"gov-messages: {len(train)} train / {len(test)} test / {len(everything)} all, {data}")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(timings are wall-clock; other processes slow them)")

    # --- the fixed split, trained as `sidan classify train --data … --label-column label` does
    start = time.perf_counter()
    router = train_generic([Example(text_of(r), label=r["label"]) for r in train], options=Options(space=FULL_SPACE))
    train_seconds = time.perf_counter() - start
    cv = router.metrics["cv"]["label"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gov.pkl"
        router.save(path)
        router = Router.load(path)
    truth = [r["label"] for r in test]
    pred = [p.label for p in router.predict_many([text_of(r) for r in test])]
    acc, f1 = accuracy_score(truth, pred), f1_score(truth, pred, average="macro")
    ref = reference_pipeline().fit([text_of(r) for r in train], [r["label"] for r in train])
    ref_pred = ref.predict([text_of(r) for r in test])
    ref_acc, ref_f1 = accuracy_score(truth, ref_pred), f1_score(truth, ref_pred, average="macro")
    print("\n[test.csv, model trained on train.csv]")
    print(f"  sidan     accuracy {acc:.3f}  macro-F1 {f1:.3f}   (settings by 5-fold CV on train: {cv['params']}, "
          f"CV accuracy {cv['accuracy']:.3f})")
    print(f"  reference accuracy {ref_acc:.3f}  macro-F1 {ref_f1:.3f}   (re-run here; the README's figures: "
          f"{REFERENCE['accuracy']:.3f} / {REFERENCE['macro_f1']:.3f})")
    print(f"  goal accuracy >= 0.85: {'met' if acc >= 0.85 else 'NOT met'}")
    print(f"  training time on train.csv ({len(train)} messages, tokenising + CV search + final fit): "
          f"{train_seconds:.1f} s")

    # --- 5-fold stratified CV over all messages
    if not args.skip_cv:
        texts = [text_of(r) for r in everything]
        labels = np.array([r["label"] for r in everything])
        space = QUICK_SPACE if args.cv_quick else FULL_SPACE
        ours, theirs = [], []
        for k, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels)):
            model = train_generic([Example(texts[i], label=labels[i]) for i in tr], options=Options(space=space))
            p = [x.label for x in model.predict_many([texts[i] for i in te])]
            ours.append(accuracy_score(labels[te], p))
            ref = reference_pipeline().fit([texts[i] for i in tr], labels[tr])
            theirs.append(accuracy_score(labels[te], ref.predict([texts[i] for i in te])))
            print(f"  fold {k + 1}: sidan {ours[-1]:.3f}  reference {theirs[-1]:.3f}", flush=True)
        print(f"\n[5-fold stratified CV over messages.csv{' (quick setting)' if args.cv_quick else ''}, "
              f"StratifiedKFold(5, shuffle=True, random_state=0)]")
        print(f"  sidan     mean accuracy {np.mean(ours):.3f} (± {np.std(ours):.3f})")
        print(f"  reference mean accuracy {np.mean(theirs):.3f} (± {np.std(theirs):.3f})")

    # --- speed
    speed_block("gov-messages, long formal messages", router, [text_of(r) for r in everything])
    live = live_router()
    if live is not None:
        from classifiers.data import load_corpus

        corpus = [ex.text for ex in load_corpus()]
        speed_block(f"project corpus, short requests, routing model {live.version}", live, corpus)
        held = live.metrics.get("heldout", {})
        if held.get("n"):
            print(f"  its held-out accuracy ({held['n']} rows): category {held['category_accuracy']:.3f}, "
                  f"department {held['department_accuracy']:.3f}, both {held['routing_accuracy']:.3f}, urgency "
                  f"{held.get('urgency_accuracy', float('nan')):.3f}")
    screen_block(live, [text_of(r) for r in everything])
    danger_block()
    return 0


def live_router():
    from classifiers import Router, default_model_path

    try:
        return Router.load(default_model_path())
    except Exception as exc:  # noqa: BLE001
        print(f"\n(no routing model at {default_model_path()}: {exc}; `make model` trains it)")
        return None


def _share(k: int, n: int) -> str:
    return f"{k}/{n} = {k / n:.1%}" if n else "—"


def screen_block(router, gov_texts: list[str]) -> None:
    """The live model's not-a-request screen on rows it was not trained on."""
    if router is None or router.screen_model is None:
        print("\n(the live model has no not-a-request screen: retrain it with `sidan classify train`)")
        return
    from classifiers.data import load_corpus, split
    from classifiers.screen import screen_data
    from classifiers.training import evaluate_screen

    train, heldout = split(load_corpus())
    held = evaluate_screen(router, screen_data(train, heldout))
    gov_refused = [(t[:40], p.not_request_reason) for t, p in zip(gov_texts, router.predict_many(gov_texts))
                   if not p.request]
    req, short, junk = held["requests"], held["short_requests"], held["not_requests"]
    print(f"\n[not-a-request screen of {router.version}, refused when p(request) < {router.screen_model.threshold:.3f}]")
    print(f"  real requests wrongly refused: corpus held-out {_share(req['refused'], req['n'])}; held-out short "
          f"requests {_share(short['refused'], short['n'])}; gov-messages (never trained on) "
          f"{_share(len(gov_refused), len(gov_texts))}   (goal <= 1 %)")
    for name, rows in (("corpus", req["examples"]), ("short", short["examples"]), ("gov", gov_refused[:5])):
        if rows:
            print(f"    refused ({name}): {rows}")
    print(f"  held-out non-requests caught: {_share(junk['caught'], junk['n'])}; by reason: "
          + ", ".join(f"{k} {v['caught']}/{v['n']}" for k, v in junk["by_reason"].items()))
    print(f"    missed, e.g.: {junk['missed']}")


def danger_block() -> None:
    """Precision and recall of corpus/danger.toml on corpus/danger-tests.toml, and on the corpus's 急难事 labels."""
    from classifiers.danger import load_danger, load_danger_tests
    from classifiers.data import load_corpus

    danger = load_danger()
    print(f"\n[danger list, corpus/danger.toml: {len(danger.kinds)} kinds]")
    for heldout, what in ((False, "development set, the patterns were tuned on it"),
                          (True, "held-out set, never tuned on")):
        positives, negatives = load_danger_tests(heldout=heldout)
        hits = [danger.find(t) for _, t in positives]
        false = [(g, t, h.kind) for g, t in negatives if (h := danger.find(t))]
        tp = sum(h is not None for h in hits)
        right_kind = sum(h is not None and h.kind == k for h, (k, _) in zip(hits, positives))
        print(f"  corpus/danger-tests.toml, {what} ({len(positives)} positives, {len(negatives)} negatives): "
              f"precision {tp / max(tp + len(false), 1):.3f}, recall {tp / len(positives):.3f}, right kind "
              f"{_share(right_kind, len(positives))}")
        if false or tp < len(positives):
            print(f"    false alarms: {false}; missed: {[t for h, (_, t) in zip(hits, positives) if h is None]}")
    rows = load_corpus()
    urgent = [ex for ex in rows if ex.urgency == "急难事"]
    fired_urgent = sum(danger.find(ex.text) is not None for ex in urgent)
    fired_other = sum(danger.find(ex.text) is not None for ex in rows if ex.urgency != "急难事")
    print(f"  the corpus's urgency labels (not written for the list): rows labelled 急难事 with danger "
          f"{_share(fired_urgent, len(urgent))}; other rows with danger {_share(fired_other, len(rows) - len(urgent))} "
          f"(mostly frauds in progress the corpus rated 操心事)")


if __name__ == "__main__":
    sys.exit(main())
