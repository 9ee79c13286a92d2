"""Text normalisation and tokenisation.

normalize(): what every text goes through before anything else, at training and at prediction time —
broken code points and control characters removed, full-width → half-width (NFKC), Traditional →
Simplified (OpenCC tw2s, which also maps Taiwan forms such as 著火 → 着火), URLs, e-mail addresses, emoji
and WeChat emoticon tags ([微笑]) stripped, whitespace collapsed. It keeps case and punctuation: the result
is also what the order stores.

analyze(): the model's view of a normalised text — lower case, digit runs folded to "0", at most
MAX_CHARS characters, and its jieba words (user dictionary loaded, stop words and punctuation
dropped; jieba's HMM for unknown words off unless asked). jieba is initialised once per process, under a
lock, with its log kept quiet.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]

# Longest text (after normalisation) the features look at; danger (classifiers/danger.py) is searched in the whole text.
MAX_CHARS = 4000

# (The e-mail branch only starts at the start of a run of word characters: linear time on 10,000-character runs.)
_URL = re.compile(
    r"(?:https?|ftp)://\S+|www\.[^\s\u3000-\u9fff\uff00-\uffef]+|(?<![\w.+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    re.I,
)
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # mahjong … symbols & pictographs, emoticons, transport, supplemental
    "\U0001fb00-\U0001fbff"
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2b00-\u2bff"  # arrows, stars
    "\u2300-\u23ff"  # technical (⌚ ⏰)
    "\ufe00-\ufe0f"  # variation selectors
    "\u200d\u20e3"  # zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters
    "]+"
)
# WeChat renders its built-in emoticons as short bracketed tags: [微笑] [捂脸] [强] [OK]
_WECHAT_EMOTICON = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]")
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("tw2s")  # Traditional (incl. Taiwan forms: 著火, 睡著) → Simplified


# Control characters become spaces (line breaks, tabs) or vanish (NUL, bidi marks, zero-width, BOM); lone
# surrogates (binary read as text) and private-use code points vanish.
_CONTROL_SPACE = re.compile(r"[\t\n\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")
_CONTROL_DROP = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff0-\ufffd\ud800-\udfff\ue000-\uf8ff]"
)


def _drop_control(text: str) -> str:
    return _CONTROL_DROP.sub("", _CONTROL_SPACE.sub(" ", text))


def normalize(text: str) -> str:
    """Canonical form of a resident's text (see the module docstring). Never raises on a str."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if not text:
        return ""
    text = _drop_control(text)
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub(" ", text)
    text = _EMOJI.sub(" ", text)
    text = _WECHAT_EMOTICON.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    if text:
        text = _opencc().convert(text)
    return text


# --------------------------------------------------------------------------- jieba
_jieba_lock = threading.Lock()
_tokenizer = None


def corpus_dir() -> Path:
    return Path(os.environ.get("SIDAN_CORPUS_DIR") or REPO_ROOT / "corpus")


def _read_word_list(path: Path) -> list[str]:
    if not path.exists():
        return []
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.append(line)
    return words


def tokenizer():
    """The process-wide jieba tokenizer with the governance user dictionary (initialised once)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _jieba_lock:
        if _tokenizer is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            tok.initialize()
            for line in _read_word_list(corpus_dir() / "userdict.txt"):
                parts = line.split()
                word = normalize(parts[0]).lower()
                freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
                if word:
                    tok.add_word(word, freq, tag)
            _tokenizer = tok
    return _tokenizer


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset(normalize(w).lower() for w in _read_word_list(corpus_dir() / "stopwords.txt"))


_NOT_A_WORD = re.compile(r"[\W_]+")  # punctuation, symbols, spaces (CJK characters are word characters)


def _is_punct(word: str) -> bool:
    return _NOT_A_WORD.fullmatch(word) is not None


class Doc(NamedTuple):
    """The model's view of one text: its characters (for char-grams) and its jieba words."""

    chars: str
    words: tuple[str, ...]


def model_text(normalized: str) -> str:
    return _DIGITS.sub("0", normalized.lower())[:MAX_CHARS]


# jieba's HMM guesses words missing from the dictionary. The char n-grams carry those already, and without it
# tokenising is about a third faster and cross-validation was as good or better (corpus and gov-messages).
# Models record the setting they were trained with (artifacts from before it was recorded used the HMM).
JIEBA_HMM = False


def analyze(text: str, *, normalized: bool = False, hmm: bool = JIEBA_HMM) -> Doc:
    norm = text if normalized else normalize(text)
    chars = model_text(norm)
    if not chars:
        return Doc("", ())
    stop = stopwords()
    words = tuple(w for w in tokenizer().lcut(chars, HMM=hmm) if not _is_punct(w) and w not in stop)
    return Doc(chars, words)

