"""Prediction and Router (a loaded model artifact; the file itself: classifiers/artifact.py).

    router = Router.load()                          # once per worker
    p = router.predict("后山裂缝越来越大,下面住着人")     # or router.predict_many(texts): the same answers, in one batch

A routing model predicts category, department and urgency. The department respects the allowed
category–department pairs of the taxonomy by a joint decision: with p(c) from the category model and
p(d) from the department model, every allowed pair gets p(c)·p(d), renormalised over the allowed pairs;
the best pair wins and its confidence is min(p'(category), p'(department)), the marginals of that joint.
So a department the category does not allow is never answered, and a confident answer needs both
models to agree on an allowed pair.

Danger (classifiers/danger.py, corpus/danger.toml): when a kind of immediate danger fires, the urgency is the most
urgent level (急难事) whatever the urgency model says, danger=True, danger_kind names the kind ("fraud",
"geohazard", "fire", …) and danger_advice is what the resident should do now (Chinese, for the reply). The caller
alerts the supervisor on danger=True (orders/services.py does). Danger of a day or two ago (前天晚上失火) makes the
urgency 急难事 too, without danger=True or advice: nothing to run from any more, help is still urgent.

Not a request (classifiers/screen.py): request=False with not_request_reason (a code of screen.REASONS: "empty",
"symbols", "digits", "repeated", "keyboard", "greeting", "thanks", "test", "chitchat", "mash") when the text is no
request at all — the caller should answer it instead of filing an order. Danger always counts as a request. The
routing fields are filled all the same. `is_request(text)` is the same verdict as a pair (request, reason).

A generic model (trained on another label set with --data/--label-column) answers `label`; it has no learned
screen, so only the screen's rules apply to it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from classifiers.artifact import (ARTIFACT_FORMAT, ModelFileError, ModelVersionWarning, default_model_path,
                                  library_versions, make_artifact, read_artifact, write_artifact)
from classifiers.danger import Danger, DangerFileError, DangerList, load_danger
from classifiers.features import Featurizer
from classifiers.model import LinearModel, softmax
from classifiers.screen import RequestModel, Screen, rule_reason
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import analyze, normalize, tokenizer

__all__ = ["ARTIFACT_FORMAT", "ModelFileError", "ModelVersionWarning", "Prediction", "Router", "default_model_path",
           "library_versions", "make_artifact", "read_artifact", "write_artifact"]

log = logging.getLogger("sidan.classifiers")

DEFAULT_URGENCY = "操心事"
TOP_TERMS = 5
SUGGESTIONS = 3
# An artifact from before corpus/danger.toml, read where that file is missing: its danger words, one kind.
_OLD_DANGER_ADVICE = "情况紧急请直接拨打 110 / 119 / 120,并告诉我们您在哪里、发生了什么。"


@dataclass(frozen=True)
class Prediction:
    category: str | None
    department: str | None
    urgency: str
    confidence: float
    terms: tuple[str, ...]
    label: str | None = None
    danger: bool = False
    danger_kind: str | None = None  # a kind of corpus/danger.toml when danger: "fraud", "geohazard", "fire", …
    danger_advice: str | None = None  # that kind's advice to the resident (Chinese)
    request: bool = True  # False: no request at all (a greeting, "测试", "asdfgh", an emoji): answer, do not file
    not_request_reason: str | None = None  # when request is False: a code of classifiers.screen.REASONS
    # the best allowed (category, department, probability) pairs, best first (SUGGESTIONS of them): the first is the
    # answer above; the probability is the pair's in the joint decision (at most the answer's confidence)
    suggestions: tuple[tuple[str, str, float], ...] = ()

    def as_json(self) -> dict:
        extra = {"danger": self.danger, "danger_kind": self.danger_kind, "danger_advice": self.danger_advice,
                 "request": self.request, "not_request_reason": self.not_request_reason}
        if self.label is not None:  # a generic-label model
            return {"label": self.label, "confidence": round(self.confidence, 4), "terms": list(self.terms), **extra}
        return {
            "category": self.category,
            "department": self.department,
            "urgency": self.urgency,
            "confidence": round(self.confidence, 4),
            "terms": list(self.terms),
            **extra,
        }


def _readable(name: str) -> str | None:
    """A feature as a term a person can read: no punctuation, spaces or bare digits."""
    if not name or name == "0" or not all(ch.isalnum() for ch in name):
        return None
    return name


class Router:
    """A loaded model artifact. Thread-safe for prediction; load once per worker."""

    normalize = staticmethod(normalize)

    def __init__(self, artifact: dict, taxonomy: Taxonomy | None = None, danger: DangerList | None = None):
        """taxonomy and danger default to corpus/ as it is now (edits apply without retraining), else to what the
        artifact recorded at training."""
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
            pairs = taxonomy.pairs
            self.most_urgent = taxonomy.most_urgent
        else:
            pairs = frozenset(tuple(p) for p in snap.get("pairs", ()))
            self.most_urgent = snap.get("most_urgent", "急难事")
        self.danger_list: DangerList | None = danger or _danger_list(artifact)
        self.screen_model: RequestModel | None = RequestModel(artifact["screen"]) if artifact.get("screen") else None
        tokenizer()  # jieba's dictionary is loaded here, at worker start, not in the first request
        # every readable feature name gets a term id (ids in the names' sorted order, for stable ties)
        self._term_names = sorted({n for n in self.featurizer.names_ if _readable(n) is not None})
        term_id = {n: i for i, n in enumerate(self._term_names)}
        self._term_of = np.fromiter((term_id.get(n, -1) for n in self.featurizer.names_), dtype=np.int64,
                                    count=len(self.featurizer.names_))
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
    def is_request(self, text: str) -> tuple[bool, str | None]:
        """(True, None) for a request; (False, reason) for a text that is none (a code of screen.REASONS)."""
        p = self.predict(text)
        return p.request, p.not_request_reason

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
        docs = [analyze(n, normalized=True, hmm=self._hmm) for n in norms]
        X = self.featurizer.transform(docs)
        scores = np.asarray(X @ self._stack_t) + self._stack_b
        probas = {}
        for name, (lo, hi, temperature) in self._slices.items():
            probas[name] = softmax(scores[:, lo:hi] / temperature)
        empty = np.diff(X.indptr) == 0
        assessed = [self._assess_danger(n) for n in norms]
        dangers = [now for now, _ in assessed]
        urgent = [now is not None or recent is not None for now, recent in assessed]
        flags = [_flags(d, s) for d, s in zip(dangers, self._screen(norms, docs, dangers))]
        out = []
        if self.kind == "generic":
            k = probas["label"].argmax(axis=1)
            confidence = np.where(empty, 0.0, probas["label"][np.arange(len(k)), k])
            terms = self._terms(X, [self._slices["label"][0] + k])
            classes = self.models["label"].classes
            for i in range(len(texts)):
                urgency = self.most_urgent if urgent[i] else DEFAULT_URGENCY
                out.append(Prediction(None, None, urgency, float(confidence[i]), terms[i], label=classes[k[i]],
                                      **flags[i]))
            return out
        ci, dj, confidence, joint = self._decide_batch(probas)
        confidence = np.where(empty, 0.0, confidence)
        terms = self._terms(X, [self._slices["category"][0] + ci, self._slices["department"][0] + dj])
        categories, departments = self.models["category"].classes, self.models["department"].classes
        if "urgency" in self.models:
            urgencies = [self.models["urgency"].classes[u] for u in probas["urgency"].argmax(axis=1)]
        else:
            urgencies = [DEFAULT_URGENCY] * len(texts)
        best = np.argsort(-joint.reshape(len(joint), -1), axis=1, kind="stable")[:, :SUGGESTIONS]
        for i in range(len(texts)):
            pairs = [np.unravel_index(flat, joint.shape[1:]) for flat in best[i]]
            suggestions = () if empty[i] else tuple(
                (categories[c], departments[d], round(float(joint[i, c, d]), 4)) for c, d in pairs if joint[i, c, d] > 0)
            out.append(Prediction(categories[ci[i]], departments[dj[i]],
                                  self.most_urgent if urgent[i] else urgencies[i],
                                  float(confidence[i]), terms[i], **flags[i], suggestions=suggestions))
        return out

    def _decide_batch(self, probas: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The joint category–department decision for a whole batch: (category index, department index, confidence,
        the joint probabilities over the allowed pairs)."""
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
        return ci, dj, conf, joint

    def _fallback(self, text) -> Prediction:
        """What is left when the model fails on a text: danger and the screen's rules, confidence 0."""
        try:
            norm = normalize(text)
            danger = self._assess_danger(norm)[0]
            screen = Screen(True) if danger else Screen(rule_reason(norm) is None, rule_reason(norm))
        except Exception:  # noqa: BLE001
            danger, screen = None, Screen(True)
        urgency = self.most_urgent if danger else DEFAULT_URGENCY
        label = "" if self.kind == "generic" else None
        return Prediction(None, None, urgency, 0.0, (), label=label, **_flags(danger, screen))

    def _assess_danger(self, normalized: str) -> tuple[Danger | None, Danger | None]:
        """(danger now, danger of a day or two ago): the latter (前天晚上失火) is 急难事 too, without danger=True."""
        return self.danger_list.assess(normalized, normalized=True) if self.danger_list is not None else (None, None)

    def _screen(self, norms: list[str], docs: list, dangers: list) -> list[Screen]:
        """Danger is always a request; then the rules; then, for the texts still undecided, the learned screen."""
        out: list[Screen | None] = []
        pending = []
        for i, (norm, danger) in enumerate(zip(norms, dangers)):
            reason = None if danger else rule_reason(norm)
            out.append(Screen(False, reason) if reason else (Screen(True) if danger else None))
            if out[-1] is None:
                pending.append(i)
        if pending and self.screen_model is not None:
            for i, screen in zip(pending, self.screen_model.screen([docs[i] for i in pending])):
                out[i] = screen
        return [screen or Screen(True) for screen in out]

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


def _flags(danger: Danger | None, screen: Screen) -> dict:
    return {"danger": danger is not None, "danger_kind": danger.kind if danger else None,
            "danger_advice": danger.advice if danger else None, "request": screen.request,
            "not_request_reason": screen.reason}


def _danger_list(artifact: dict) -> DangerList | None:
    """corpus/danger.toml as it is now; else the list the artifact recorded; else an old artifact's danger words."""
    try:
        return load_danger()
    except DangerFileError as exc:
        log.warning("danger list: %s; using the model's own copy", exc)
    if artifact.get("danger"):
        return DangerList(artifact["danger"])
    words = sorted({w for w in artifact.get("taxonomy", {}).get("danger_words", ()) if w}, key=len, reverse=True)
    if not words:
        return None
    return DangerList({"context": {}, "kinds": [{"name": "danger", "label": "危险", "advice": _OLD_DANGER_ADVICE,
                                                 "patterns": [re.escape(w) for w in words]}]})
