"""Prediction, Router (a loaded model artifact) and the artifact file.

A routing model predicts category, department and urgency. The department respects the allowed
category–department pairs of the taxonomy by a joint decision: with p(c) from the category model and
p(d) from the department model, every allowed pair gets p(c)·p(d), renormalised over the allowed pairs;
the best pair wins and its confidence is min(p'(category), p'(department)), the marginals of that joint.
So a department the category does not allow is never answered, and a confident answer needs both
models to agree on an allowed pair.

Urgency: the urgency model's answer, except that a danger word of the taxonomy (after normalisation)
forces the most urgent level (急难事) and sets danger=True.

A generic model (trained on another label set with --data/--label-column) answers `label`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import logging
import os
import pickle
import platform
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from classifiers.features import Featurizer
from classifiers.model import LinearModel, softmax
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import JIEBA_HMM, REPO_ROOT, analyze, normalize, tokenizer

log = logging.getLogger("sidan.classifiers")

ARTIFACT_FORMAT = "sidan-router/1"
DEFAULT_URGENCY = "操心事"
TOP_TERMS = 5


class ModelVersionWarning(UserWarning):
    """The artifact was written by other library versions than the running ones."""


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not a sidan model."""


def default_model_path() -> Path:
    env = os.environ.get("SIDAN_CLASSIFIER_MODEL_PATH")
    return Path(env) if env else REPO_ROOT / "var" / "models" / "router.pkl"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "jieba", "opencc"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "?"
    return out


@dataclass(frozen=True)
class Prediction:
    category: str | None
    department: str | None
    urgency: str
    confidence: float
    terms: tuple[str, ...]
    label: str | None = None
    danger: bool = False

    def as_json(self) -> dict:
        if self.label is not None:  # a generic-label model
            return {"label": self.label, "confidence": round(self.confidence, 4), "terms": list(self.terms)}
        return {
            "category": self.category,
            "department": self.department,
            "urgency": self.urgency,
            "confidence": round(self.confidence, 4),
            "terms": list(self.terms),
            "danger": self.danger,
        }


def _readable(name: str) -> str | None:
    """A feature as a term a person can read: no punctuation, spaces or bare digits."""
    if not name or name == "0" or not all(ch.isalnum() for ch in name):
        return None
    return name


class Router:
    """A loaded model artifact. Thread-safe for prediction; load once per worker."""

    normalize = staticmethod(normalize)

    def __init__(self, artifact: dict, taxonomy: Taxonomy | None = None):
        self.artifact = artifact
        self.kind: str = artifact["kind"]
        self.version: str = artifact["version"]
        self.metrics: dict = artifact.get("metrics", {})
        self.featurizer: Featurizer = artifact["featurizer"]
        self._hmm: bool = bool(artifact.get("analyzer", {}).get("jieba_hmm", True))  # as it was trained
        self.models: dict[str, LinearModel] = artifact["models"]
        if taxonomy is None:
            try:
                taxonomy = load_taxonomy()
            except (OSError, ValueError, KeyError):
                taxonomy = None
        snap = artifact.get("taxonomy", {})
        if taxonomy is not None:
            self.danger_words = taxonomy.danger_words
            pairs = taxonomy.pairs
            self.most_urgent = taxonomy.most_urgent
        else:
            self.danger_words = tuple(snap.get("danger_words", ()))
            pairs = frozenset(tuple(p) for p in snap.get("pairs", ()))
            self.most_urgent = snap.get("most_urgent", "急难事")
        tokenizer()  # jieba's dictionary is loaded here, at worker start, not in the first request
        # every readable feature name gets a term id (ids in the names' sorted order, for stable ties)
        self._term_names = sorted({n for n in self.featurizer.names_ if _readable(n) is not None})
        term_id = {n: i for i, n in enumerate(self._term_names)}
        self._term_of = np.fromiter((term_id.get(n, -1) for n in self.featurizer.names_), dtype=np.int64,
                                    count=len(self.featurizer.names_))
        words = sorted({w for w in self.danger_words if w}, key=len, reverse=True)
        self._danger = re.compile("|".join(map(re.escape, words))) if words else None
        # all targets' coefficients in one matrix: one sparse product scores every target; its rows give the terms
        names = list(self.models)
        self._stack = np.ascontiguousarray(np.vstack([self.models[k].coef for k in names]))
        self._stack_t = np.ascontiguousarray(self._stack.T)  # X @ this: no copy of a transposed view per call
        self._stack_b = np.concatenate([self.models[k].intercept for k in names])
        bounds = np.cumsum([0] + [len(self.models[k].classes) for k in names])
        self._slices = {k: (int(bounds[i]), int(bounds[i + 1]), self.models[k].temperature) for i, k in enumerate(names)}
        self._mask = None
        if self.kind == "routing":
            cats, deps = self.models["category"].classes, self.models["department"].classes
            mask = np.array([[1.0 if (c, d) in pairs else 0.0 for d in deps] for c in cats])
            for i in range(len(cats)):  # a category the taxonomy no longer knows: any department
                if not mask[i].any():
                    mask[i] = 1.0
            self._mask = mask

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def load(cls, path: str | Path | None = None, taxonomy: Taxonomy | None = None) -> "Router":
        path = Path(path) if path is not None else default_model_path()
        return cls(read_artifact(path), taxonomy)

    def save(self, path: str | Path) -> Path:
        return write_artifact(self.artifact, path)

    # ------------------------------------------------------------------ prediction
    # One code path for one text and for many: features of the whole batch, one sparse product for every
    # target's scores, the joint decision and the explaining terms as array operations; Python only builds
    # the answers. Only the batch's texts are tokenised one by one (jieba).
    def predict(self, text: str) -> Prediction:
        """Never raises: an unusable text (empty, garbage) gets confidence 0 and goes to a person."""
        try:
            return self._predict_batch([text])[0]
        except Exception:  # noqa: BLE001 - a prediction must never break order intake
            log.exception("classifier failed on a text of %d characters", len(text) if isinstance(text, str) else -1)
            return self._fallback(text)

    def predict_many(self, texts: Iterable[str]) -> list[Prediction]:
        texts = list(texts)
        try:
            return self._predict_batch(texts)
        except Exception:  # noqa: BLE001 - one bad text must not cost the others their answer
            return [self.predict(t) for t in texts]

    def _predict_batch(self, texts: list) -> list[Prediction]:
        norms = [normalize(t) for t in texts]
        X = self.featurizer.transform([analyze(n, normalized=True, hmm=self._hmm) for n in norms])
        scores = np.asarray(X @ self._stack_t) + self._stack_b
        probas = {}
        for name, (lo, hi, temperature) in self._slices.items():
            probas[name] = softmax(scores[:, lo:hi] / temperature)
        empty = np.diff(X.indptr) == 0
        danger = [self._is_dangerous(n) for n in norms]
        out = []
        if self.kind == "generic":
            k = probas["label"].argmax(axis=1)
            confidence = np.where(empty, 0.0, probas["label"][np.arange(len(k)), k])
            terms = self._terms(X, [self._slices["label"][0] + k])
            classes = self.models["label"].classes
            for i in range(len(texts)):
                urgency = self.most_urgent if danger[i] else DEFAULT_URGENCY
                out.append(Prediction(None, None, urgency, float(confidence[i]), terms[i], label=classes[k[i]],
                                      danger=danger[i]))
            return out
        ci, dj, confidence = self._decide_batch(probas)
        confidence = np.where(empty, 0.0, confidence)
        terms = self._terms(X, [self._slices["category"][0] + ci, self._slices["department"][0] + dj])
        categories, departments = self.models["category"].classes, self.models["department"].classes
        if "urgency" in self.models:
            urgencies = [self.models["urgency"].classes[u] for u in probas["urgency"].argmax(axis=1)]
        else:
            urgencies = [DEFAULT_URGENCY] * len(texts)
        for i in range(len(texts)):
            out.append(Prediction(categories[ci[i]], departments[dj[i]],
                                  self.most_urgent if danger[i] else urgencies[i],
                                  float(confidence[i]), terms[i], danger=danger[i]))
        return out

    def _decide_batch(self, probas: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The joint category–department decision for a whole batch: (category index, department index, confidence)."""
        pc, pd = probas["category"], probas["department"]
        joint = pc[:, :, None] * pd[:, None, :] * self._mask[None]
        total = joint.sum(axis=(1, 2))
        bad = ~(total > 0) | ~np.isfinite(total)
        if bad.any():
            joint[bad] = pc[bad, :, None] * pd[bad, None, :]
            total = joint.sum(axis=(1, 2))
        joint /= total[:, None, None]
        flat = joint.reshape(len(joint), -1).argmax(axis=1)
        ci, dj = np.unravel_index(flat, joint.shape[1:])
        rows = np.arange(len(joint))
        conf = np.minimum(joint.sum(axis=2)[rows, ci], joint.sum(axis=1)[rows, dj])
        return ci, dj, conf

    def _fallback(self, text) -> Prediction:
        try:
            danger = self._is_dangerous(normalize(text))
        except Exception:  # noqa: BLE001
            danger = False
        urgency = self.most_urgent if danger else DEFAULT_URGENCY
        if self.kind == "generic":
            return Prediction(None, None, urgency, 0.0, (), label="", danger=danger)
        return Prediction(None, None, urgency, 0.0, (), danger=danger)

    def _is_dangerous(self, normalized: str) -> bool:
        """A danger word of the taxonomy occurs in the (normalised) text (as classifiers.text.find_danger)."""
        return self._danger is not None and self._danger.search(normalized.lower()) is not None

    def _terms(self, X, chosen: list[np.ndarray], n: int = TOP_TERMS) -> list[tuple[str, ...]]:
        """Per row of X, the readable terms that pushed hardest towards the chosen classes (rows of the
        coefficient stack, one array per target): coefficient × feature value summed over the targets and over
        the features that read the same (a word, its char-gram, in the head), best first, none contained in a
        better one."""
        rows = len(X.indptr) - 1
        row_of = np.repeat(np.arange(rows), np.diff(X.indptr))
        cols = X.indices
        weight = sum(self._stack[c[row_of], cols] for c in chosen) * X.data
        term = self._term_of[cols]
        keep = (weight > 0) & (term >= 0)
        n_terms = max(len(self._term_names), 1)
        keys, inverse = np.unique(row_of[keep] * n_terms + term[keep], return_inverse=True)
        totals = np.bincount(inverse.ravel(), weights=weight[keep], minlength=len(keys))
        row, term = keys // n_terms, keys % n_terms
        order = np.lexsort((term, -totals, row))  # by row, then strongest first, ties by the term's text
        row, term = row[order], term[order]
        bounds = np.searchsorted(row, np.arange(rows + 1)).tolist()
        names = self._term_names
        out = []
        for r in range(rows):
            picked: list[str] = []
            for t in term[bounds[r]:bounds[r + 1]].tolist():
                name = names[t]
                if any(name in other for other in picked):
                    continue
                picked.append(name)
                if len(picked) == n:
                    break
            out.append(tuple(picked))
        return out


# ---------------------------------------------------------------------------- the artifact file
def make_artifact(kind: str, featurizer: Featurizer, models: dict[str, LinearModel], metrics: dict, *,
                  corpus_hash: str, taxonomy: Taxonomy | None = None, extra: dict | None = None) -> dict:
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    art = {
        "format": ARTIFACT_FORMAT,
        "kind": kind,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "featurizer": featurizer,
        "models": models,
        "metrics": metrics,
        "corpus_hash": corpus_hash,
        "libraries": library_versions(),
        "analyzer": {"jieba_hmm": JIEBA_HMM},
        "taxonomy": {
            "pairs": sorted(taxonomy.pairs) if taxonomy else [],
            "danger_words": list(taxonomy.danger_words) if taxonomy else [],
            "most_urgent": taxonomy.most_urgent if taxonomy else "急难事",
        },
        **(extra or {}),
    }
    digest = hashlib.sha256(f"{corpus_hash}|{art['created_at']}|{sorted(metrics.items())!r}".encode()).hexdigest()
    art["version"] = f"{kind}-{created.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
    return art


def write_artifact(artifact: dict, path: str | Path) -> Path:
    """Atomically: written to a temporary file next to the target, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(artifact, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the server's workers may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _Unpickler(pickle.Unpickler):
    """Only what an artifact holds: our two classes, numpy arrays and a few builtins — nothing that runs code."""

    ALLOWED = {
        ("classifiers.model", "LinearModel"),
        ("classifiers.features", "Featurizer"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "tuple"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a model file")


def read_artifact(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no model at {path}: train one with `sidan classify train`")
    try:
        data = path.read_bytes()
        artifact = _Unpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError, IndexError,
            OSError) as exc:
        raise ModelFileError(f"{path} is not a readable sidan model ({type(exc).__name__}: {exc})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise ModelFileError(f"{path} is not a sidan model artifact ({ARTIFACT_FORMAT})")
    trained, running = artifact.get("libraries", {}), library_versions()
    differ = {k: (trained.get(k), running[k]) for k in running if k != "python" and trained.get(k) != running[k]}
    if differ:
        what = ", ".join(f"{k} {a} → {b}" for k, (a, b) in sorted(differ.items()))
        warnings.warn(
            f"model {path.name} was trained with other library versions ({what}); its answers may differ — "
            f"retrain with `sidan classify train`",
            ModelVersionWarning,
            stacklevel=3,
        )
    return artifact
