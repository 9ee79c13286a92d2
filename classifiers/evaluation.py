"""Accuracy, macro-F1, per-class precision/recall, confusion matrices (text and PNG)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def report(y_true: list, y_pred: list, labels: list | None = None) -> dict:
    labels = list(labels) if labels is not None else sorted({*y_true, *(p for p in y_pred if p is not None)})
    index = {lab: i for i, lab in enumerate(labels)}
    n = len(y_true)
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    correct = 0
    for t, p in zip(y_true, y_pred):
        correct += t == p
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    per_class = {}
    f1s = []
    for lab, i in index.items():
        tp = int(cm[i, i])
        support = sum(1 for t in y_true if t == lab)
        predicted = sum(1 for p in y_pred if p == lab)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted:
            f1s.append(f1)
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "labels": labels,
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def format_report(title: str, rep: dict) -> str:
    lines = [f"== {title}: n={rep['n']}  accuracy={rep['accuracy']:.4f}  macro-F1={rep['macro_f1']:.4f}"]
    width = max([len(str(lab)) for lab in rep["labels"]] + [8])
    lines.append(f"{'class':<{width}}  precision  recall     f1  support")
    for lab in rep["labels"]:
        pc = rep["per_class"][lab]
        lines.append(f"{lab:<{width}}  {pc['precision']:9.3f}  {pc['recall']:6.3f}  {pc['f1']:5.3f}  {pc['support']:7d}")
    lines.append("confusion matrix (rows: true, columns: predicted, in the order above):")
    for lab, row in zip(rep["labels"], rep["confusion"]):
        lines.append(f"{lab:<{width}}  " + " ".join(f"{v:4d}" for v in row))
    return "\n".join(lines)


def _cjk_font():
    from matplotlib import font_manager

    for name in ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                 "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            return name
    return None


def plot_confusion(reports: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """One confusion matrix per report, side by side, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    font = _cjk_font()
    rc = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
          "axes.unicode_minus": False}
    with warnings.catch_warnings(), matplotlib.rc_context(rc):
        warnings.simplefilter("ignore", UserWarning)  # missing glyphs when no CJK font is installed
        k = len(reports)
        sizes = [max(4.0, 0.55 * len(r["labels"]) + 2.0) for r in reports.values()]
        fig, axes = plt.subplots(1, k, figsize=(sum(sizes) + 0.5, max(sizes) + 0.6), squeeze=False)
        for ax, (name, rep) in zip(axes[0], reports.items()):
            cm = np.asarray(rep["confusion"], dtype=float)
            labels = [str(lab) for lab in rep["labels"]]
            ax.imshow(cm, cmap="Blues")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
            ax.set_yticks(range(len(labels)), labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{name}: acc {rep['accuracy']:.3f}, macro-F1 {rep['macro_f1']:.3f}")
            top = cm.max() if cm.size else 0
            for (i, j), v in np.ndenumerate(cm):
                if v:
                    ax.text(j, i, int(v), ha="center", va="center", fontsize=8,
                            color="white" if v > top / 2 else "black")
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path
