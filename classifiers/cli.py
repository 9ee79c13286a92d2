"""`sidan classify train | evaluate | predict` (also `python -m classifiers …`).

train     routing model from corpus/requests/*.csv (+ the corrections the caller passes), measured on the
          corpus's held-out split, with its not-a-request screen (corpus/not-requests/*.txt against the requests
          and corpus/short-requests.txt) in the same file; written to the model path only if its held-out routing
          accuracy is not lower than the live model's on the same split (--force overrides). With --data CSV
          --label-column COL: a model of that CSV's label set (several --text-column names, comma-separated,
          are joined with a space), written to --model PATH.
evaluate  accuracy, macro-F1, per-class precision/recall and confusion matrices, also as a PNG.
predict   one text per line on stdin → one JSON object per line on stdout.

Exit status: 0 done, 1 the new model was not promoted, 2 a usage or data error (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Iterable

from classifiers.data import DataError, Example, load_corpus, read_corpus_csv, read_labelled_csv, split
from classifiers.evaluation import format_report, plot_confusion, report
from classifiers.model import FULL_SPACE, QUICK_SPACE
from classifiers.router import ModelFileError, Router, default_model_path, write_artifact
from classifiers.training import Options, evaluate_routing, train_generic, train_routing

EXIT_OK, EXIT_NOT_PROMOTED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    pass


def _progress():
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)


def _say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _columns(value: str) -> list[str]:
    cols = [c.strip() for c in value.split(",") if c.strip()]
    if not cols:
        raise CliError("--text-column needs at least one column name")
    return cols


def _extra_examples(extra: Iterable | None) -> list[Example]:
    out = []
    for item in extra or ():
        try:
            text, category, department = item[0], item[1], item[2]
        except (TypeError, IndexError, KeyError):
            raise CliError(f"an extra example must be (text, category, department), got {item!r}") from None
        if text and str(text).strip():
            out.append(Example(str(text).strip(), category or None, department or None, None, source="correction"))
    return out


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------------------- train
def cmd_train(args, extra_examples) -> int:
    options = Options(space=QUICK_SPACE if args.quick else FULL_SPACE, folds=args.folds, seed=args.seed,
                      progress=_progress())
    if args.folds < 2:
        raise CliError("--folds must be at least 2")
    if args.label_column:
        if not args.data:
            raise CliError("--label-column needs --data CSV")
        if not args.model:
            raise CliError("a model of another label set needs --model PATH (the default path holds the routing model)")
        cols = _columns(args.text_column)
        examples = read_labelled_csv(args.data, cols, args.label_column)
        if len({ex.label for ex in examples}) < 2:
            raise CliError(f"{args.data}: column {args.label_column} needs at least two different labels")
        if extra_examples:
            _say(f"note: {len(list(extra_examples))} corrections ignored: they label the routing model, not {args.label_column}")
        _say(f"training on {len(examples)} rows of {args.data} ({'+'.join(cols)} → {args.label_column})")
        router = train_generic(examples, options=options, source={
            "data": str(args.data), "text_columns": cols, "label_column": args.label_column})
        cv = router.metrics["cv"]["label"]
        path = Path(args.model)
        write_artifact(router.artifact, path)
        print(f"model {router.version}: {len(router.models['label'].classes)} labels, "
              f"{cv['folds']}-fold CV accuracy {cv['accuracy']:.4f}, macro-F1 {cv['macro_f1']:.4f} "
              f"({router.metrics['train_seconds']} s)")
        print(f"written: {path}")
        return EXIT_OK

    # the routing model
    if args.data:
        corpus = read_corpus_csv(args.data, text_column=args.text_column)
        if not corpus:
            raise CliError(f"{args.data}: no rows with text")
    else:
        corpus = load_corpus(args.corpus)
    extras = _extra_examples(extra_examples)
    _say(f"training the routing model: {len(corpus)} corpus rows + {len(extras)} corrections")
    router, heldout, summary = train_routing(corpus, extras, options=options)
    for ex, why in summary["skipped"][:5]:
        _say(f"skipped ({why}): {ex.source}: {ex.text[:40]}")
    if len(summary["skipped"]) > 5:
        _say(f"… {len(summary['skipped']) - 5} more rows skipped")
    m = router.metrics
    h = m["heldout"]
    print(f"model {router.version}: trained on {m['train_rows']} rows ({m['extra_examples']} corrections) "
          f"in {m['train_seconds']} s")
    if h.get("n"):
        print(f"held-out ({h['n']} rows): category {h['category_accuracy']:.4f}, department "
              f"{h['department_accuracy']:.4f}, both {h['routing_accuracy']:.4f}, urgency "
              f"{_fmt(h.get('urgency_accuracy'))}")
    for target, cv in m["cv"].items():
        print(f"  {target}: {cv['folds']}-fold CV accuracy {cv['accuracy']:.4f}, macro-F1 {cv['macro_f1']:.4f}, "
              f"settings {cv['params']}")
    screen = m.get("screen")
    if screen:
        sh = screen["heldout"]
        print(f"not-a-request screen (threshold {screen['threshold']:.3f}): held-out requests refused "
              f"{sh['requests']['refused']}/{sh['requests']['n']}, short requests refused "
              f"{sh['short_requests']['refused']}/{sh['short_requests']['n']}, non-requests caught "
              f"{sh['not_requests']['caught']}/{sh['not_requests']['n']}")

    path = Path(args.model) if args.model else default_model_path()
    if path.exists() and not args.force:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                live = Router.load(path)
        except ModelFileError as exc:
            _say(f"the live model is unreadable ({exc}); replacing it")
            live = None
        if live is not None and live.kind == "routing" and h.get("n"):
            live_h = evaluate_routing(live, heldout)
            new_acc, live_acc = h["routing_accuracy"], live_h["routing_accuracy"]
            if new_acc < live_acc:
                print(f"NOT PROMOTED: held-out routing accuracy {new_acc:.4f} < live model {live.version} "
                      f"{live_acc:.4f} on the same {h['n']} rows; kept {path} (use --force to replace it)")
                return EXIT_NOT_PROMOTED
            print(f"promoted: held-out routing accuracy {new_acc:.4f} >= live model {live.version} {live_acc:.4f}")
    write_artifact(router.artifact, path)
    print(f"written: {path}")
    return EXIT_OK


# ---------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    path = Path(args.model) if args.model else default_model_path()
    router = Router.load(path)
    plot = Path(args.plot) if args.plot else path.with_name(path.stem + ".confusion.png")
    reports: dict[str, dict] = {}
    if router.kind == "generic":
        source = router.artifact.get("source", {})
        if not args.data:
            raise CliError("this model was trained on another label set: give --data CSV to evaluate it on")
        cols = _columns(args.text_column) if args.text_column else source.get("text_columns") or ["text"]
        label = args.label_column or source.get("label_column") or "label"
        examples = read_labelled_csv(args.data, cols, label)
        preds = router.predict_many([ex.text for ex in examples])
        labels = list(router.models["label"].classes)
        reports[label] = report([ex.label for ex in examples], [p.label for p in preds], labels)
        where = f"{Path(args.data).name} ({len(examples)} rows)"
    else:
        if args.data:
            rows = read_corpus_csv(args.data, text_column=args.text_column or "text")
            where = f"{Path(args.data).name} ({len(rows)} rows)"
        else:
            _, rows = split(load_corpus(args.corpus))
            where = f"corpus held-out split ({len(rows)} rows)"
        if not rows:
            raise CliError("nothing to evaluate on")
        preds = router.predict_many([ex.text for ex in rows])
        reports["category"] = report([ex.category for ex in rows], [p.category for p in preds],
                                     list(router.models["category"].classes))
        reports["department"] = report([ex.department for ex in rows], [p.department for p in preds],
                                       list(router.models["department"].classes))
        urg = [(ex.urgency, p.urgency) for ex, p in zip(rows, preds) if ex.urgency]
        if urg:
            reports["urgency"] = report([t for t, _ in urg], [p for _, p in urg])
    print(f"model {router.version} on {where}")
    for name, rep in reports.items():
        print(format_report(name, rep))
    if args.json:
        print(json.dumps({k: {kk: vv for kk, vv in r.items()} for k, r in reports.items()}, ensure_ascii=False))
    plot_confusion(reports, plot, title=f"{router.version} — {where}")
    print(f"confusion matrix plot: {plot}")
    return EXIT_OK


# ---------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    router = Router.load(Path(args.model) if args.model else default_model_path())
    stdin, stdout = sys.stdin, sys.stdout
    if hasattr(stdin, "reconfigure"):
        stdin.reconfigure(encoding="utf-8", errors="replace")
    if hasattr(stdout, "reconfigure"):
        stdout.reconfigure(encoding="utf-8")
    interactive = stdin.isatty()

    def emit(preds):
        for p in preds:
            stdout.write(json.dumps(p.as_json(), ensure_ascii=False) + "\n")
        stdout.flush()

    batch: list[str] = []
    for line in stdin:
        text = line.rstrip("\r\n")
        if interactive:
            emit([router.predict(text)])
            continue
        batch.append(text)
        if len(batch) >= 256:
            emit(router.predict_many(batch))
            batch = []
    if batch:
        emit(router.predict_many(batch))
    return EXIT_OK


# ---------------------------------------------------------------------------- main
def build_parser(prog: str = "sidan classify") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="the routing classifier: train, evaluate, predict")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (refuses to replace a better live model)")
    train.add_argument("--data", help="a labelled CSV instead of corpus/requests/*.csv")
    train.add_argument("--text-column", default="text", help="text column(s), comma-separated, joined with a space")
    train.add_argument("--label-column", help="train a model of this column's labels (needs --data and --model)")
    train.add_argument("--model", help=f"where to write the model (default {default_model_path()})")
    train.add_argument("--corpus", help="directory of the corpus CSV files (default corpus/requests)")
    train.add_argument("--force", action="store_true", help="replace the live model even if the new one is worse")
    train.add_argument("--quick", action="store_true", help="one default setting instead of the CV search (fast)")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    train.add_argument("--seed", type=int, default=0)

    ev = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class precision/recall, confusion matrix (+PNG)")
    ev.add_argument("--model", help="model file (default: the live model)")
    ev.add_argument("--data", help="labelled CSV (default for a routing model: the corpus's held-out split)")
    ev.add_argument("--text-column", help="text column(s), comma-separated (default: as trained)")
    ev.add_argument("--label-column", help="label column (default: as trained)")
    ev.add_argument("--corpus", help="directory of the corpus CSV files (default corpus/requests)")
    ev.add_argument("--plot", help="where to write the confusion-matrix PNG (default: next to the model)")
    ev.add_argument("--json", action="store_true", help="also print the reports as one JSON line")

    pr = sub.add_parser("predict", help="one text per line on stdin → one JSON object per line")
    pr.add_argument("--model", help="model file (default: the live model)")
    return parser


def main(argv: list[str] | None = None, extra_examples=None, prog: str = "sidan classify") -> int:
    args = build_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "train":
            return cmd_train(args, extra_examples)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        return cmd_predict(args)
    except (CliError, DataError, ModelFileError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
