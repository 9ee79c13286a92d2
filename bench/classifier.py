"""Benchmark of the routing classifier on real data and its speed.

    python bench/classifier.py [DATASET_DIR] [--cv-quick] [--skip-cv]

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
    every prediction tokenises its text).
Goals: single predict p99 < 2 ms, batch >= 5,000 messages/s on one core.
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
    live = None
    try:
        from classifiers import default_model_path

        live = Router.load(default_model_path())
    except Exception as exc:  # noqa: BLE001
        print(f"\n(no routing model for the corpus speed figures: {exc})")
    if live is not None:
        from classifiers.data import load_corpus

        corpus = [ex.text for ex in load_corpus()]
        speed_block(f"project corpus, short requests, routing model {live.version}", live, corpus)
        held = live.metrics.get("heldout", {})
        if held.get("n"):
            print(f"  its held-out accuracy ({held['n']} rows): category {held['category_accuracy']:.3f}, "
                  f"department {held['department_accuracy']:.3f}, both {held['routing_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
