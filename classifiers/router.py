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
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from classifiers.features import Featurizer
from classifiers.model import LinearModel
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import REPO_ROOT, analyze, find_danger, normalize, tokenizer

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
        self._readable = np.fromiter((_readable(name) is not None for name in self.featurizer.names_), dtype=bool,
                                     count=len(self.featurizer.names_))
        # all targets' coefficients in one matrix: one gather and one product per single prediction
        names = list(self.models)
        self._stack = np.ascontiguousarray(np.vstack([self.models[k].coef for k in names]))
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
    def predict(self, text: str) -> Prediction:
        """Never raises: an unusable text (empty, garbage) gets confidence 0 and goes to a person."""
        try:
            norm = normalize(text)
            danger = bool(find_danger(norm, self.danger_words))
            cols, vals = self.featurizer.transform_one(analyze(norm, normalized=True))
            return self._decide(cols, vals, danger)
        except Exception:  # noqa: BLE001 - a prediction must never break order intake
            log.exception("classifier failed on a text of %d characters", len(text) if isinstance(text, str) else -1)
            return self._fallback(text)

    def predict_many(self, texts: Iterable[str]) -> list[Prediction]:
        texts = list(texts)
        try:
            norms = [normalize(t) for t in texts]
            docs = [analyze(n, normalized=True) for n in norms]
            X = self.featurizer.transform(docs)
        except Exception:  # noqa: BLE001
            return [self.predict(t) for t in texts]
        probas = {name: m.proba(X) for name, m in self.models.items()}
        decided = self._decide_batch(probas) if self.kind == "routing" else None
        out = []
        indptr, indices, data = X.indptr, X.indices, X.data
        for i, norm in enumerate(norms):
            try:
                lo, hi = indptr[i], indptr[i + 1]
                danger = bool(find_danger(norm, self.danger_words))
                row = {k: p[i] for k, p in probas.items()}
                if decided is not None:
                    out.append(self._routing_prediction(indices[lo:hi], data[lo:hi], danger, row,
                                                        *(d[i] for d in decided)))
                else:
                    out.append(self._decide(indices[lo:hi], data[lo:hi], danger, row))
            except Exception:  # noqa: BLE001
                log.exception("classifier failed on a batch item")
                out.append(self._fallback(texts[i]))
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
            danger = bool(find_danger(normalize(text), self.danger_words))
        except Exception:  # noqa: BLE001
            danger = False
        urgency = self.most_urgent if danger else DEFAULT_URGENCY
        if self.kind == "generic":
            return Prediction(None, None, urgency, 0.0, (), label="", danger=danger)
        return Prediction(None, None, urgency, 0.0, (), danger=danger)

    def _decide(self, cols, vals, danger: bool, probas: dict | None = None) -> Prediction:
        cols = np.asarray(cols, dtype=np.int64)
        vals = np.asarray(vals, dtype=np.float64)
        empty = len(cols) == 0
        if probas is None:
            scores = self._stack[:, cols] @ vals + self._stack_b
            probas = {}
            for name, (lo, hi, temperature) in self._slices.items():
                z = scores[lo:hi] / temperature
                e = np.exp(z - z.max())
                probas[name] = e / e.sum()

        if self.kind == "generic":
            m = self.models["label"]
            p = probas["label"]
            k = int(np.argmax(p))
            terms = self._terms(cols, m.contributions(cols, vals, k)) if not empty else ()
            urgency = self.most_urgent if danger else DEFAULT_URGENCY
            return Prediction(None, None, urgency, 0.0 if empty else float(p[k]), terms, label=m.classes[k],
                              danger=danger)

        (ci,), (dj,), (conf,) = self._decide_batch({k: probas[k][None, :] for k in ("category", "department")})
        return self._routing_prediction(cols, vals, danger, probas, ci, dj, conf)

    def _routing_prediction(self, cols, vals, danger: bool, probas: dict, i: int, j: int, conf: float) -> Prediction:
        cm, dm = self.models["category"], self.models["department"]
        i, j = int(i), int(j)
        empty = len(cols) == 0
        confidence = 0.0 if empty else float(conf)
        if "urgency" in self.models:
            urgency = self.models["urgency"].classes[int(np.argmax(probas["urgency"]))]
        else:
            urgency = DEFAULT_URGENCY
        if danger:
            urgency = self.most_urgent
        terms: tuple[str, ...] = ()
        if not empty:
            terms = self._terms(cols, cm.contributions(cols, vals, i) + dm.contributions(cols, vals, j))
        return Prediction(cm.classes[i], dm.classes[j], urgency, confidence, terms, danger=danger)

    def _terms(self, cols: np.ndarray, contrib: np.ndarray, n: int = TOP_TERMS) -> tuple[str, ...]:
        keep = (contrib > 0) & self._readable[cols]
        if not keep.any():
            return ()
        names = self.featurizer.names_
        agg: dict[str, float] = {}
        for c, v in zip(cols[keep].tolist(), contrib[keep].tolist()):
            name = names[c]
            agg[name] = agg.get(name, 0.0) + v  # the same string as a word, a char-gram, in the head: one term
        chosen: list[str] = []
        for name, _ in sorted(agg.items(), key=lambda kv: (-kv[1], kv[0])):
            if any(name in other for other in chosen):
                continue
            chosen.append(name)
            if len(chosen) == n:
                break
        return tuple(chosen)


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
