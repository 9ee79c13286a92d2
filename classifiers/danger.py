"""Immediate danger in a resident's text, by kind, from corpus/danger.toml.

    danger_list = load_danger()                      # once (the Router does it at load)
    hit = danger_list.find("后山裂缝越来越大,下面住着人")
    hit.kind, hit.label, hit.advice, hit.match       # "geohazard", "地质灾害", "请马上带家人撤到…", "山裂缝越来越"

Kinds (the file's order is their priority): fraud, geohazard, gas, electrocution, fire, explosion, violence, suicide,
collapse, drowning, poisoning, trapped, medical, accident, distress. A kind fires on one of its patterns, or on
one of its signs together with one of its cues anywhere in the text; a match does not count when its clause is
about a campaign or a project (宣传, 治理, 项目 …), when a negation stands right before it (没着火, 防溺水), when a
worry or a hypothesis comes shortly before it (万一着火, 担心…会滑坡), or when the past does (去年…滑坡) and
nothing between that and the match says it is happening now (正在, 刚才, 现在又 …). See the file's own comments.

The Router calls this on every text (after normalisation): a hit makes the prediction 急难事 with
danger=True, danger_kind and danger_advice. A match that only a recent past word takes back (前天晚上失火) is no
danger now — no advice — but still 急难事: `recent()` finds it. Imports nothing else of this project but
classifiers.text.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from classifiers.text import corpus_dir, normalize

NOW, RECENT = "now", "recent"
HEDGE_WINDOW = 8  # characters before a match in which a worry or a hypothesis takes it back
_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：、…~\s]")


class DangerFileError(ValueError):
    """corpus/danger.toml is missing a key or holds a pattern that does not compile."""


@dataclass(frozen=True)
class Danger:
    kind: str  # "fraud", "geohazard", "fire", …
    label: str  # its Chinese name: "电信诈骗"
    advice: str  # what the resident should do now, in Chinese
    match: str  # the words that fired it


@dataclass(frozen=True)
class _Kind:
    name: str
    label: str
    advice: str
    patterns: re.Pattern | None
    signs: re.Pattern | None
    cues: re.Pattern | None
    unless: re.Pattern | None


def _compile(where: str, parts) -> re.Pattern | None:
    if isinstance(parts, str):
        parts = [parts]
    parts = [p for p in parts or () if p]
    if not parts:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in parts))
    except re.error as exc:
        raise DangerFileError(f"danger list: {where}: {exc}") from None


class DangerList:
    """The compiled danger list. Thread-safe; `data` is the file's content (kept in model artifacts)."""

    def __init__(self, data: dict):
        self.data = data
        try:
            context = data["context"]
            self._topics = _compile("context.topics", context.get("topics"))
            negations = _compile("context.negations", context.get("negations"))
            self._negation = re.compile(f"(?:{negations.pattern})$") if negations else None
            self._hedges = _compile("context.hedges", context.get("hedges"))
            self._past = _compile("context.past", context.get("past"))
            recent = _compile("context.recent", context.get("recent"))
            self._recent = re.compile(f"(?:{recent.pattern})$") if recent else None
            self._now = _compile("context.now", context.get("now"))
            kinds = []
            for k in data["kinds"]:
                name = k["name"]
                kinds.append(_Kind(name, k.get("label", name), k["advice"], _compile(f"{name}.patterns", k.get("patterns")),
                                   _compile(f"{name}.signs", k.get("signs")), _compile(f"{name}.cues", k.get("cues")),
                                   _compile(f"{name}.unless", k.get("unless"))))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DangerFileError(f"danger list: missing or malformed {exc}") from None
        every = [p.pattern for k in kinds for p in (k.patterns, k.signs) if p is not None]
        self._any = re.compile("|".join(every)) if every else None
        names = [k.name for k in kinds]
        if len(set(names)) != len(names):
            raise DangerFileError(f"danger list: a kind is named twice ({names})")
        self.kinds: tuple[_Kind, ...] = tuple(kinds)
        self.advice: dict[str, str] = {k.name: k.advice for k in kinds}

    @classmethod
    def load(cls, path: str | Path | None = None) -> DangerList:
        path = Path(path) if path else danger_path()
        try:
            return cls(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise DangerFileError(f"{path}: {exc}") from None

    # ------------------------------------------------------------------ detection
    def find(self, text: str, *, normalized: bool = False) -> Danger | None:
        """The first kind (in the file's order) that fires on the text, or None. Never raises on a str."""
        return self.assess(text, normalized=normalized)[0]

    def recent(self, text: str, *, normalized: bool = False) -> Danger | None:
        """A kind that fired a day or two ago (前天晚上失火) and none now: no danger, but the matter is still 急难事."""
        return self.assess(text, normalized=normalized)[1]

    def assess(self, text: str, *, normalized: bool = False) -> tuple[Danger | None, Danger | None]:
        """(danger now, or None; else danger of a day or two ago, or None), in one pass over the text."""
        low = (text if normalized else normalize(text)).lower()
        if not low or (self._any is not None and not self._any.search(low)):
            return None, None  # most texts: one scan for every pattern and sign at once
        recent = None
        for kind in self.kinds:
            for when, hit in self._matches(kind, low):
                if when == NOW:
                    return Danger(kind.name, kind.label, kind.advice, hit), None
                if when == RECENT and recent is None:
                    recent = Danger(kind.name, kind.label, kind.advice, hit)
        return None, recent

    def _matches(self, kind: _Kind, low: str):
        """(NOW, RECENT or None; the matched words) for each match of the kind's patterns, then of its signs when
        one of its cues is in the text."""
        parts = [kind.patterns]
        if kind.signs is not None and kind.cues is not None and kind.cues.search(low):
            parts.append(kind.signs)
        for pattern in parts:
            if pattern is not None:
                for m in pattern.finditer(low):
                    yield self._when(low, m.start(), m.end(), kind), m.group(0)

    def _when(self, low: str, start: int, end: int, kind: _Kind) -> str | None:
        """NOW when a match at low[start:end] speaks of danger here and now (see the module docstring), RECENT when
        only a recent past word takes it back, else None."""
        begin = start
        while begin > 0 and not _CLAUSE_END.match(low, begin - 1):
            begin -= 1
        finish = _CLAUSE_END.search(low, end)
        clause = low[begin:finish.start() if finish else len(low)]
        before = low[begin:start]
        if self._topics is not None and self._topics.search(clause):
            return None
        if kind.unless is not None and kind.unless.search(clause):
            return None
        if self._negation is not None and self._negation.search(before):
            return None
        if self._hedges is not None and self._hedges.search(before[-HEDGE_WINDOW:]):
            return None
        past = list(self._past.finditer(before)) if self._past is not None else []
        if not past or (self._now is not None and self._now.search(before, past[-1].end())):
            return NOW  # no past word, or the present comes after it: "上次着火的那家现在又着火了"
        return RECENT if self._recent is not None and all(self._recent.match(m.group(0)) for m in past) else None


def danger_path() -> Path:
    return corpus_dir() / "danger.toml"


def load_danger(path: str | Path | None = None) -> DangerList:
    return DangerList.load(path)


def load_danger_tests(path: str | Path | None = None, *, heldout: bool = False
                      ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """corpus/danger-tests.toml as (positives, negatives): lists of (kind or negative group, text); the development
    set, or with heldout=True the set the patterns were never tuned on."""
    path = Path(path) if path else corpus_dir() / "danger-tests.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if heldout:
        data = data["heldout"]
    positives = [(kind, text) for kind, texts in data["positives"].items() for text in texts]
    negatives = [(group, text) for group, texts in data["negatives"].items() for text in texts]
    return positives, negatives
