"""The linear model of one target (category, department, urgency, or a generic label) and its training.

Each target gets one linear model, scores = X·Wᵀ + b, made of two linear learners on the same features:

  * complement naive Bayes (Rennie et al. 2003) — strong on small, skewed text data;
  * NB-SVM (Wang & Manning 2012): per class, a linear SVM on features scaled by the class's naive-Bayes
    log-count ratio — the SVM's margin with NB's feature weighting.

Both weight matrices are centred over the classes and divided by the spread of their scores on the
training data, then added: the sum is still one linear model (so `terms` are exact contributions
coefficient × feature value, and a prediction is one sparse dot product). Probabilities are a softmax
of the scores with a temperature fitted on out-of-fold scores (temperature scaling, Guo et al. 2017).

Hyperparameters (char n-gram range, the NB smoothing of each learner, the SVM's C) are chosen by
stratified k-fold cross-validation on the training data only; the out-of-fold scores of the chosen
setting also fit the temperature and give the cross-validation figures stored with the model.
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from classifiers.features import Featurizer


@dataclass(frozen=True)
class SearchSpace:
    char_ngrams: tuple[tuple[int, int], ...] = ((1, 2), (1, 3))
    head_chars: tuple[int, ...] = (40,)
    min_df: tuple[int, ...] = (1,)
    cnb_alpha: tuple[float, ...] = (0.01, 0.03, 0.1)
    svm: tuple[tuple[float, float], ...] = ((0.03, 0.3), (0.03, 1.0), (0.1, 0.3), (0.1, 1.0))  # (NB alpha, C)

    def feature_grid(self) -> list[dict]:
        return [
            {"char_ngrams": c, "head_chars": h, "min_df": m}
            for c, h, m in itertools.product(self.char_ngrams, self.head_chars, self.min_df)
        ]


FULL_SPACE = SearchSpace()
QUICK_SPACE = SearchSpace(char_ngrams=((1, 2),), cnb_alpha=(0.03,), svm=((0.1, 1.0),))


# --------------------------------------------------------------------------- the model
@dataclass
class LinearModel:
    classes: tuple[str, ...]
    # (n_classes, n_features), centred over the classes: coefficient × feature value is the feature's push towards
    # a class relative to the others (the terms that explain a prediction)
    coef: np.ndarray
    intercept: np.ndarray  # (n_classes,)
    temperature: float = 1.0
    params: dict = field(default_factory=dict)


def softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the two learners
def _class_counts(X: sp.csr_matrix, y: np.ndarray, n_classes: int) -> np.ndarray:
    Y = sp.csr_matrix((np.ones(len(y)), (y, np.arange(len(y)))), shape=(n_classes, len(y)))
    return np.asarray((Y @ X).todense())


def _spread(S: np.ndarray) -> float:
    S = S - S.mean(axis=1, keepdims=True)
    s = float(S.std())
    return s if s > 1e-12 else 1.0


def complement_nb(X: sp.csr_matrix, y: np.ndarray, n_classes: int, alpha: float, counts=None):
    counts = _class_counts(X, y, n_classes) if counts is None else counts
    comp = counts.sum(axis=0, keepdims=True) + alpha - counts
    W = -np.log(comp / comp.sum(axis=1, keepdims=True))
    W -= W.mean(axis=0, keepdims=True)
    b = np.zeros(n_classes)
    s = _spread(np.asarray(X @ W.T))
    return W / s, b / s


def nb_svm(X: sp.csr_matrix, y: np.ndarray, n_classes: int, alpha: float, C: float, counts=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    counts = _class_counts(X, y, n_classes) if counts is None else counts
    total = counts.sum(axis=0)
    W = np.zeros((n_classes, X.shape[1]))
    b = np.zeros(n_classes)
    for k in range(n_classes):
        yk = y == k
        if not yk.any():  # class absent from this training fold: never its turn
            b[k] = -1.0
            continue
        if yk.all():
            b[k] = 1.0
            continue
        p = alpha + counts[k]
        q = alpha + total - counts[k]
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(C=C, dual=True, max_iter=2000, random_state=0).fit(X @ sp.diags(r), yk)
        W[k] = svm.coef_.ravel() * r
        b[k] = svm.intercept_[0]
    W -= W.mean(axis=0, keepdims=True)
    b -= b.mean()
    s = _spread(np.asarray(X @ W.T) + b)
    return W / s, b / s


def fit_temperature(S: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature minimising the log-loss of out-of-fold scores."""
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        P = softmax(S / np.exp(log_t))
        return float(-np.log(np.clip(P[rows, y], 1e-12, None)).mean())

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


# --------------------------------------------------------------------------- cross-validated training
def stratified_folds(labels: list, k: int, seed: int = 0) -> np.ndarray:
    """Fold number per row, stratified by label (rows without a label spread round-robin)."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=np.int64)
    by_label: dict = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    offset = 0
    for lab in sorted(by_label, key=lambda x: (x is None, str(x))):
        idx = np.asarray(by_label[lab])
        rng.shuffle(idx)
        folds[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return folds


def _macro_f1(y: np.ndarray, p: np.ndarray, n_classes: int) -> float:
    f1s = []
    for k in range(n_classes):
        tp = np.sum((p == k) & (y == k))
        fp = np.sum((p == k) & (y != k))
        fn = np.sum((p != k) & (y == k))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


@dataclass
class TrainResult:
    featurizer: Featurizer
    models: dict[str, LinearModel]
    cv: dict[str, dict]  # target -> {"accuracy", "macro_f1", "folds", "params"}
    # target -> out-of-fold probabilities of the chosen setting (temperature applied), one row per labelled doc in
    # the docs' order: what a decision threshold is fitted on without touching held-out data
    oof: dict[str, np.ndarray] = field(default_factory=dict)


def train(
    docs: list,
    targets: dict[str, list],
    *,
    primary: tuple[str, ...] | None = None,
    space: SearchSpace = FULL_SPACE,
    folds: int = 5,
    seed: int = 0,
    progress=None,
) -> TrainResult:
    """Fit one linear model per target on shared features; settings chosen by k-fold CV on these rows.

    targets: name -> one label per doc (None: the row does not train that target).
    primary: the targets whose mean CV accuracy chooses the feature setting (default: all)."""
    n = len(docs)
    primary = tuple(primary or targets)
    enc: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]] = {}
    for name, labels in targets.items():
        if len(labels) != n:
            raise ValueError(f"target {name}: {len(labels)} labels for {n} texts")
        classes = tuple(sorted({lab for lab in labels if lab is not None}))
        if len(classes) < 2:
            raise ValueError(f"target {name}: needs at least two different labels, found {len(classes)}")
        index = {c: i for i, c in enumerate(classes)}
        has = np.array([lab is not None for lab in labels])
        y = np.array([index[lab] if lab is not None else -1 for lab in labels])
        enc[name] = (classes, y, has)

    k = max(2, min(folds, n))
    fold_of = stratified_folds(list(targets[primary[0]]), k, seed)
    feature_grid = space.feature_grid()
    svm_grid = list(space.svm)
    results: dict[int, dict] = {}
    steps = len(feature_grid) * k
    bar = progress(total=steps, desc="cross-validation") if progress else None
    bags_of = {}
    for g, fparams in enumerate(feature_grid):
        bags = bags_of[g] = Featurizer(**fparams).bags(docs)
        oof = {name: {} for name in targets}
        for name, (classes, y, has) in enc.items():
            for a in space.cnb_alpha:
                oof[name][("cnb", a)] = np.zeros((n, len(classes)))
            for bc in svm_grid:
                oof[name][("svm", bc)] = np.zeros((n, len(classes)))
        for f in range(k):
            tr = np.flatnonzero(fold_of != f)
            va = np.flatnonzero(fold_of == f)
            fz = Featurizer(**fparams).fit_bags(bags, tr)
            Xtr = fz.transform_bags(bags, tr)
            Xva = fz.transform_bags(bags, va)
            for name, (classes, y, has) in enc.items():
                K = len(classes)
                mtr, mva = has[tr], has[va]
                if not mva.any() or not mtr.any():
                    continue
                Xt, yt, Xv, rows_v = Xtr[mtr], y[tr][mtr], Xva[mva], va[mva]
                counts = _class_counts(Xt, yt, K)
                for a in space.cnb_alpha:
                    W, b = complement_nb(Xt, yt, K, a, counts)
                    oof[name][("cnb", a)][rows_v] = np.asarray(Xv @ W.T) + b
                for bc in svm_grid:
                    W, b = nb_svm(Xt, yt, K, bc[0], bc[1], counts)
                    oof[name][("svm", bc)][rows_v] = np.asarray(Xv @ W.T) + b
            if bar:
                bar.update(1)
        per_target = {}
        for name, (classes, y, has) in enc.items():
            best = None
            rows = np.flatnonzero(has)
            for a, bc in itertools.product(space.cnb_alpha, svm_grid):
                S = oof[name][("cnb", a)][rows] + oof[name][("svm", bc)][rows]
                pred = S.argmax(axis=1)
                acc = float(np.mean(pred == y[rows]))
                f1 = _macro_f1(y[rows], pred, len(classes))
                key = (round(acc, 9), round(f1, 9))
                if best is None or key > best[0]:
                    best = (key, {"cnb_alpha": a, "svm_alpha": bc[0], "C": bc[1]}, S)
            per_target[name] = best
        results[g] = per_target
    if bar:
        bar.close()

    def feature_score(g: int) -> tuple:
        return tuple(np.mean([results[g][t][0][i] for t in primary]) for i in (0, 1))

    g_best = max(range(len(feature_grid)), key=lambda g: (feature_score(g), -g))
    fparams = feature_grid[g_best]
    fz = Featurizer(**fparams)
    everything = np.arange(n)
    fz.fit_bags(bags_of[g_best], everything)
    X = fz.transform_bags(bags_of[g_best], everything)
    fz.finalize()
    models, cv, oof = {}, {}, {}
    for name, (classes, y, has) in enc.items():
        (acc, f1), mparams, S = results[g_best][name]
        rows = np.flatnonzero(has)
        T = fit_temperature(S, y[rows])
        Xt, yt = X[rows], y[rows]
        counts = _class_counts(Xt, yt, len(classes))
        W1, b1 = complement_nb(Xt, yt, len(classes), mparams["cnb_alpha"], counts)
        W2, b2 = nb_svm(Xt, yt, len(classes), mparams["svm_alpha"], mparams["C"], counts)
        params = {**fparams, **mparams}
        models[name] = LinearModel(classes, W1 + W2, b1 + b2, T, params)
        cv[name] = {"accuracy": acc, "macro_f1": f1, "folds": k, "rows": int(len(rows)), "params": params,
                    "temperature": T}
        oof[name] = softmax(S / T)
    return TrainResult(fz, models, cv, oof)

