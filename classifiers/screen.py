"""Is a text a request at all? Rules for the obvious, a learned model for the rest.

A resident's message that is no request (a greeting, "测试", "asdfgh qwerty", "你好10", "在吗", "吃了吗", "哈哈",
thanks, an emoji) must not become an order; the bot answers it instead. The Router screens every text it predicts:

    p = router.predict("你好10")
    p.request, p.not_request_reason                    # False, "greeting"
    router.is_request("路灯坏了")                       # (True, None)

Reasons (`REASONS`, stable codes; the Chinese says what they mean):
  rules (no model needed, also for models trained before the screen existed)
    empty     nothing left after normalisation: blank, emoji or WeChat emoticons only, a link only
    symbols   punctuation and symbols only ("???", "。。。")
    digits    digits only ("123", "10")
    repeated  one character over and over ("啊啊啊啊", "哈哈哈"), or a short latin run repeated ("sdfsdf")
    keyboard  latin letters only, and all of them keyboard mashing ("asdfgh qwerty", "jjjjj", "zxcv")
  model (corpus/not-requests/<reason>.txt against the requests of corpus/requests/*.csv and corpus/short-requests.txt)
    greeting, thanks, test, chitchat, mash

Danger overrides everything: a text in which classifiers.danger fires ("救命", "着火了") is always a request.

The model: the router's own pipeline (jieba words + character n-grams, TF-IDF, complement NB + NB-SVM,
classifiers/model.py) on one target whose classes are "request" and the reasons above. A text is refused when its
probability of being a request is below a threshold fitted on out-of-fold probabilities of the training rows: the
highest at which at most MAX_REFUSED of each group of training requests (the corpus, the short requests) would be
refused. A text longer than MODEL_MAX_CHARS is not put to the model: it is a request. Real requests must almost never
be refused: bench/classifier.py measures it on held-out data.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.data import Example, split
from classifiers.features import Featurizer
from classifiers.model import FULL_SPACE, LinearModel, SearchSpace, softmax, train
from classifiers.text import analyze, corpus_dir, model_text, normalize

REQUEST = "request"
REASONS: dict[str, str] = {
    "empty": "空消息(只有空白、表情或链接)",
    "symbols": "只有标点符号",
    "digits": "只有数字",
    "repeated": "同一个字反复",
    "keyboard": "键盘乱按的字母",
    "greeting": "问候、在吗",
    "thanks": "致谢、应答、再见",
    "test": "测试、发错",
    "chitchat": "闲聊",
    "mash": "乱码、无意义的字",
}
RULE_REASONS = ("empty", "symbols", "digits", "repeated", "keyboard")
MAX_REFUSED = 0.01  # share of a group of training requests the fitted threshold may refuse (out of fold): the goal
# A longer text (normalised) is a request: the learned screen judges short texts only. No text of corpus/not-requests
# is half as long, and a long letter often opens with pleasantries ("你好,感谢在百忙之中…") the model would take for thanks.
MODEL_MAX_CHARS = 60

_KEYBOARD_RUNS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "qazwsxedcrfvtgbyhnujmikolp")  # rows, and columns top to bottom
_VOWELS = set("aeiouy")
_LATIN_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Screen:
    request: bool
    reason: str | None = None  # a code of REASONS when request is False


def _bare(normalized: str) -> str:
    """Letters, digits and CJK characters only, lower case."""
    return "".join(ch for ch in normalized.lower() if ch.isalnum())


def _on_keyboard(word: str) -> bool:
    return len(word) >= 3 and any(word in run or word in run[::-1] for run in _KEYBOARD_RUNS)


def _repeats(text: str, longest_unit: int) -> bool:
    """text is one unit of 1..longest_unit characters written at least twice (three times for one character)."""
    for size in range(1, longest_unit + 1):
        times, rest = divmod(len(text), size)
        if not rest and times >= (3 if size == 1 else 2) and text == text[:size] * times:
            return True
    return False


def _is_mash(word: str) -> bool:
    return (len(word) >= 2 and not _VOWELS & set(word)) or _on_keyboard(word) or _repeats(word, 4)


def rule_reason(normalized: str) -> str | None:
    """The rules' verdict on a normalised text (classifiers.text.normalize): a reason code, or None (not decided)."""
    if not normalized.strip():
        return "empty"
    bare = _bare(normalized)
    if not bare:
        return "symbols"
    if all(unicodedata.category(ch) == "Nd" for ch in bare):
        return "digits"
    if _repeats(bare, 1) or (bare.isascii() and _repeats(bare, 4)):
        return "repeated"
    if bare.isascii():
        words = _LATIN_WORD.findall(normalized.lower())
        if words and all(_is_mash(w) for w in words):
            return "keyboard"
    return None


# ---------------------------------------------------------------------------- the learned part
NOT_REQUEST = "not_request"


class RequestModel:
    """The learned screen of a routing artifact (kept there under "screen"): its own featurizer, fitted on requests
    and non-requests alike, and two linear models on it — "request" (request / not_request: the decision, with the
    threshold on p(request)) and "reason" (which reason, trained on the non-requests only)."""

    def __init__(self, data: dict):
        self.data = data
        self.featurizer: Featurizer = data["featurizer"]
        self.decision: LinearModel = data["models"]["request"]
        self.reason: LinearModel = data["models"]["reason"]
        self.threshold = float(data["threshold"])
        self._request = list(self.decision.classes).index(REQUEST)
        self._coef_t = np.ascontiguousarray(np.vstack([self.decision.coef, self.reason.coef]).T)
        self._intercept = np.concatenate([self.decision.intercept, self.reason.intercept])
        self._split = len(self.decision.classes)

    def p_request(self, docs: list) -> tuple[np.ndarray, np.ndarray]:
        """Per analysed doc: p(request), and the index of the likeliest reason in self.reason.classes."""
        if len(docs) == 1:  # one message (the common case): no sparse matrix to build
            cols, vals = self.featurizer.transform_one(docs[0])
            scores = (vals @ self._coef_t[cols] + self._intercept)[None, :]
        else:
            scores = np.asarray(self.featurizer.transform(docs) @ self._coef_t) + self._intercept
        k = self._split
        p = softmax(scores[:, :k] / self.decision.temperature)[:, self._request]
        return p, scores[:, k:].argmax(axis=1)

    def screen(self, docs: list) -> list[Screen]:
        """One Screen per analysed doc (classifiers.text.analyze); an empty doc is left to the rules and a long one
        (over MODEL_MAX_CHARS) is a request."""
        out = [Screen(True) for _ in docs]
        short = [i for i, doc in enumerate(docs) if 0 < len(doc.chars) <= MODEL_MAX_CHARS]
        if short:
            p, reason = self.p_request([docs[i] for i in short])
            for i, pr, r in zip(short, p.tolist(), reason.tolist()):
                if pr < self.threshold:
                    out[i] = Screen(False, self.reason.classes[r])
        return out


def fit_threshold(p_request: np.ndarray, groups: list[str], max_refused: float = MAX_REFUSED) -> float:
    """The highest threshold t (a request is refused when p < t) at which no group of requests has more than
    max_refused of its rows refused. p_request and groups: the training requests' out-of-fold values."""
    p = np.asarray(p_request, dtype=float)
    groups_arr = np.asarray(groups)
    best = 1.0
    for g in sorted(set(groups)):
        values = np.sort(p[groups_arr == g])
        allowed = int(np.floor(max_refused * len(values)))  # this many may fall below t
        best = min(best, float(values[allowed]) if allowed < len(values) else 1.0)
    return best


# ---------------------------------------------------------------------------- data
def not_requests_dir() -> Path:
    return corpus_dir() / "not-requests"


def _lines(path: Path) -> list[str]:
    """One text a line; a line starting with # is a comment (a # inside a text is kept)."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def load_not_requests(directory: str | Path | None = None) -> list[Example]:
    """corpus/not-requests/<reason>.txt as examples labelled with the reason (the file's name)."""
    directory = Path(directory) if directory else not_requests_dir()
    out = []
    for path in sorted(directory.glob("*.txt")):
        reason = path.stem
        if reason not in REASONS or reason in RULE_REASONS:
            raise ValueError(f"{path}: unknown reason {reason!r} (one of {', '.join(sorted(set(REASONS) - set(RULE_REASONS)))})")
        out.extend(Example(text, label=reason, source=path.name) for text in _lines(path))
    return out


def load_short_requests(path: str | Path | None = None) -> list[Example]:
    path = Path(path) if path else corpus_dir() / "short-requests.txt"
    return [Example(text, label=REQUEST, source=path.name) for text in _lines(path)] if path.exists() else []


@dataclass
class ScreenData:
    """The screen's rows: what it trains on and what it is measured on (the corpus's hash split, ~20 % held out)."""

    train: list[Example]  # label: REQUEST or a reason; source: the file
    heldout_requests: list[Example]
    heldout_short: list[Example]
    heldout_not_requests: list[Example]


def screen_data(corpus_train: list[Example], corpus_heldout: list[Example], extras: list[Example] = (),
                not_requests: list[Example] | None = None, short: list[Example] | None = None) -> ScreenData:
    """Rows the rules decide are left out of the model's training (they never reach it)."""
    not_requests = load_not_requests() if not_requests is None else not_requests
    short = load_short_requests() if short is None else short
    short_train, short_heldout = split(short)
    junk_train, junk_heldout = split(not_requests)
    requests = [Example(ex.text, label=REQUEST, source="corpus") for ex in [*corpus_train, *extras]]
    train = [ex for ex in [*requests, *short_train, *junk_train] if model_text(normalize(ex.text)) and
             rule_reason(normalize(ex.text)) is None]
    return ScreenData(train, list(corpus_heldout), short_heldout, junk_heldout)



def train_screen(data: ScreenData, *, space: SearchSpace = FULL_SPACE, folds: int = 5, seed: int = 0,
                 progress=None) -> RequestModel:
    """The learned screen: settings chosen by k-fold CV on the decision, the threshold fitted on its out-of-fold
    probabilities (fit_threshold over the groups of training requests: the corpus, the short requests)."""
    docs = [analyze(ex.text) for ex in data.train]
    decision = [REQUEST if ex.label == REQUEST else NOT_REQUEST for ex in data.train]
    reasons = [None if ex.label == REQUEST else ex.label for ex in data.train]
    result = train(docs, {"request": decision, "reason": reasons}, primary=("request",), space=space, folds=folds,
                   seed=seed, progress=progress)
    p_request = result.oof["request"][:, list(result.models["request"].classes).index(REQUEST)]
    is_request = np.array([label == REQUEST for label in decision])
    groups = [ex.source for ex, yes in zip(data.train, is_request) if yes]
    threshold = fit_threshold(p_request[is_request], groups)
    return RequestModel({"featurizer": result.featurizer, "models": result.models, "threshold": threshold,
                         "cv": result.cv, "train_rows": len(data.train)})
