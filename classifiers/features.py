"""Sparse TF-IDF features of analysed texts, in four blocks:

  w   jieba words of the whole text
  c   character n-grams of the whole text (they carry unknown words, typos and dialect spellings)
  hw  words of the head of the text (its first `head_chars` characters)
  hc  character n-grams of the head

Why a head block: a message usually says what it is about first (a title, "路灯坏了…"), and long
formal messages bury that under paragraphs of context; the head block lets the model weigh the
opening separately without needing separate fields (predict sees one line of text). For a short
message the head is the whole message, which costs nothing.

Each block is TF-IDF with sublinear tf (1 + ln tf), smooth idf, L2-normalised on its own, so a long
body cannot drown the head and char-grams cannot drown words. Written by hand rather than with four
scikit-learn vectorizers, for speed: a character n-gram is an integer made of its code points
(21 bits each), so counting and vocabulary lookup of char-grams are numpy operations, not a Python
loop per character.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import scipy.sparse as sp

from classifiers.text import Doc

BLOCKS = ("w", "c", "hw", "hc")
_BITS = 21
_MASK = (1 << _BITS) - 1


def char_gram_ids(text: str, lo: int, hi: int) -> np.ndarray:
    """Integer ids of the character n-grams of text, lo <= n <= hi <= 3 (n-grams of different n never collide:
    code points are >= 1, so an n-gram's id has its highest bit in its n-th 21-bit group)."""
    if not text:
        return np.zeros(0, dtype=np.int64)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
    parts = []
    grams = None
    for n in range(1, hi + 1):
        if n > len(codes):
            break
        grams = codes if n == 1 else (grams[:-1] << _BITS) | codes[n - 1:]
        if n >= lo:
            parts.append(grams)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def char_gram_text(gid: int) -> str:
    chars = []
    gid = int(gid)
    while gid:
        chars.append(chr(gid & _MASK))
        gid >>= _BITS
    return "".join(reversed(chars))


def _head_words(words, head_chars: int) -> list[str]:
    out, length = [], 0
    for w in words:
        if length >= head_chars:
            break
        out.append(w)
        length += len(w)
    return out


class Bags:
    """Raw counts of a set of documents in the four blocks, over the vocabulary of these documents.

    Cross-validation builds this once per feature setting; each fold then fits and transforms by
    selecting rows and columns (sparse matrix operations, no per-document Python work)."""

    def __init__(self, docs, char_ngrams: tuple[int, int], head_chars: int):
        lo, hi = char_ngrams
        docs = list(docs)
        self.n = len(docs)
        self.word_names: list[list[str]] = [[], []]
        self.char_keys: list[np.ndarray] = []
        self.counts: list[sp.csr_matrix] = []
        word_vocab: list[dict[str, int]] = [{}, {}]
        word_rows: list[list] = [[[], [], []], [[], [], []]]  # rows, cols, values
        char_ids: list[list[np.ndarray]] = [[], []]
        for i, doc in enumerate(docs):
            for wb, words in enumerate((doc.words, _head_words(doc.words, head_chars))):
                vocab, (rr, cc, vv) = word_vocab[wb], word_rows[wb]
                for w, c in Counter(words).items():
                    j = vocab.get(w)
                    if j is None:
                        j = vocab[w] = len(vocab)
                    rr.append(i)
                    cc.append(j)
                    vv.append(c)
            char_ids[0].append(char_gram_ids(doc.chars, lo, hi))
            char_ids[1].append(char_gram_ids(doc.chars[:head_chars], lo, hi))
        for b in range(4):
            if b in (0, 2):
                wb = b // 2
                rr, cc, vv = word_rows[wb]
                self.word_names[wb] = list(word_vocab[wb])
                m = sp.csr_matrix((np.asarray(vv, dtype=np.float64), (np.asarray(rr, dtype=np.int64),
                                   np.asarray(cc, dtype=np.int64))), shape=(self.n, len(word_vocab[wb])))
            else:
                cb = b // 2
                ids = char_ids[cb]
                lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=self.n)
                allids = np.concatenate(ids) if self.n else np.zeros(0, dtype=np.int64)
                keys, inverse = np.unique(allids, return_inverse=True)
                doc_of = np.repeat(np.arange(self.n, dtype=np.int64), lengths)
                pair, counts = np.unique(doc_of * max(len(keys), 1) + inverse, return_counts=True)
                m = sp.csr_matrix((counts.astype(np.float64), (pair // max(len(keys), 1), pair % max(len(keys), 1))),
                                  shape=(self.n, len(keys)))
                self.char_keys.append(keys)
            m.sum_duplicates()
            self.counts.append(m)


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf × idf, each row L2-normalised (a block of the feature matrix)."""
    m = counts.tocsr(copy=True).astype(np.float64)
    m.data = (1.0 + np.log(m.data)) * idf[m.indices]
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    m.data /= np.repeat(norms, np.diff(m.indptr))
    return m


class Featurizer:
    def __init__(self, char_ngrams: tuple[int, int] = (1, 2), head_chars: int = 40, min_df: int = 1):
        lo, hi = char_ngrams
        if not 1 <= lo <= hi <= 3:
            raise ValueError(f"char_ngrams must satisfy 1 <= lo <= hi <= 3, got {char_ngrams}")
        self.char_ngrams = (int(lo), int(hi))
        self.head_chars = int(head_chars)
        self.min_df = int(min_df)

    def params(self) -> dict:
        return {"char_ngrams": self.char_ngrams, "head_chars": self.head_chars, "min_df": self.min_df}

    def bags(self, docs) -> Bags:
        return Bags(docs, self.char_ngrams, self.head_chars)

    # -- fitting
    def fit(self, docs) -> "Featurizer":
        bags = self.bags(docs)
        self.fit_bags(bags, np.arange(bags.n))
        self.finalize()
        return self

    def fit_bags(self, bags: Bags, rows: np.ndarray) -> "Featurizer":
        """Fit on the given rows of precomputed bags (the vocabulary and idf of those rows only)."""
        n = len(rows)
        self.word_vocab_: list[dict[str, int]] = []
        self.char_keys_: list[np.ndarray] = []
        self.char_cols_: list[np.ndarray] = []
        self.block_start_: list[int] = []
        self._select: list[np.ndarray] = []
        idf_parts = []
        start = 0
        for b in range(4):
            self.block_start_.append(start)
            df = np.asarray((bags.counts[b][rows] > 0).sum(axis=0)).ravel()
            sel = np.flatnonzero(df >= max(self.min_df, 1))
            self._select.append(sel)
            idf_parts.append(np.log((1 + n) / (1 + df[sel])) + 1.0)
            if b in (0, 2):
                names = bags.word_names[b // 2]
                self.word_vocab_.append({names[j]: start + k for k, j in enumerate(sel)})
            else:
                self.char_keys_.append(bags.char_keys[b // 2][sel])
                self.char_cols_.append(np.arange(start, start + len(sel), dtype=np.int64))
            start += len(sel)
        self.block_start_.append(start)
        self.idf_ = np.concatenate(idf_parts)
        self.n_docs_ = n
        return self

    def transform_bags(self, bags: Bags, rows: np.ndarray) -> sp.csr_matrix:
        blocks = []
        for b in range(4):
            lo, hi = self.block_start_[b], self.block_start_[b + 1]
            blocks.append(_tfidf(bags.counts[b][rows][:, self._select[b]], self.idf_[lo:hi]))
        return sp.hstack(blocks, format="csr")

    def finalize(self) -> "Featurizer":
        """Readable names of the features (for `terms`); drops what only cross-validation needed."""
        names: list[str] = [""] * self.n_features
        for b in (0, 2):
            for w, j in self.word_vocab_[b // 2].items():
                names[j] = w
        for keys, cols in zip(self.char_keys_, self.char_cols_):
            for k, j in zip(keys.tolist(), cols.tolist()):
                names[j] = char_gram_text(k)
        self.names_ = names
        self.__dict__.pop("_select", None)
        return self

    @property
    def n_features(self) -> int:
        return self.block_start_[-1]

    def block_of(self, col: int) -> str:
        for b in range(4):
            if col < self.block_start_[b + 1]:
                return BLOCKS[b]
        raise IndexError(col)

    # -- transforming new documents
    def _raw(self, doc: Doc):
        lo, hi = self.char_ngrams
        return (
            doc.words,
            char_gram_ids(doc.chars, lo, hi),
            _head_words(doc.words, self.head_chars),
            char_gram_ids(doc.chars[: self.head_chars], lo, hi),
        )

    # A short text is faster in plain Python (dictionary lookups of char-gram strings), a long one with numpy
    # (integer char-gram ids, searchsorted); both compute exactly the same row.
    SHORT = 200

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_char_vocab", None)
        return state

    def _char_vocabs(self) -> list[dict[str, int]]:
        vocabs = self.__dict__.get("_char_vocab")
        if vocabs is None:
            names = self.names_
            vocabs = [{names[j]: j for j in cols.tolist()} for cols in self.char_cols_]
            self._char_vocab = vocabs
        return vocabs

    def _row(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        if len(doc.chars) <= self.SHORT:
            return self._row_short(doc)
        return self._row_long(doc)

    def _row_short(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.char_ngrams
        idf = self.idf_
        char_vocabs = self._char_vocabs()
        chars, head = doc.chars, doc.chars[: self.head_chars]
        cols: list[int] = []
        vals: list[float] = []
        log, sqrt = math.log, math.sqrt
        for b in range(4):
            if b == 0:
                feats, vocab = doc.words, self.word_vocab_[0]
            elif b == 2:
                feats, vocab = _head_words(doc.words, self.head_chars), self.word_vocab_[1]
            else:
                text = chars if b == 1 else head
                feats = [text[i:i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]
                vocab = char_vocabs[b // 2]
            if not feats:
                continue
            hits = sorted((vocab[f], c) for f, c in Counter(feats).items() if f in vocab)
            if not hits:
                continue
            block = [(1.0 + log(c)) * idf[j] for j, c in hits]
            norm = sqrt(sum(v * v for v in block))
            cols.extend(j for j, _ in hits)
            vals.extend(v / norm for v in block)
        return np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=np.float64)

    def _row_long(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        cols_out: list[np.ndarray] = []
        vals_out: list[np.ndarray] = []
        idf = self.idf_
        for b, feats in enumerate(self._raw(doc)):
            if len(feats) == 0:
                continue
            if b in (0, 2):
                vocab = self.word_vocab_[b // 2]
                hits = [(vocab[f], c) for f, c in Counter(feats).items() if f in vocab]
                if not hits:
                    continue
                hits.sort()
                cols = np.fromiter((j for j, _ in hits), dtype=np.int64, count=len(hits))
                tf = np.fromiter((c for _, c in hits), dtype=np.float64, count=len(hits))
            else:
                keys = self.char_keys_[b // 2]
                if not len(keys):
                    continue
                pos = np.searchsorted(keys, feats)
                pos[pos == len(keys)] = 0
                pos = pos[keys[pos] == feats]
                if not len(pos):
                    continue
                pos, tf = np.unique(pos, return_counts=True)
                cols = self.char_cols_[b // 2][pos]
                tf = tf.astype(np.float64)
            vals = (1.0 + np.log(tf)) * idf[cols]
            vals /= np.sqrt(np.dot(vals, vals))
            cols_out.append(cols)
            vals_out.append(vals)
        if not cols_out:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(cols_out), np.concatenate(vals_out)

    def transform(self, docs) -> sp.csr_matrix:
        rows = [self._row(doc) for doc in docs]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(c) for c, _ in rows])
        indices = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
        data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), self.n_features))

    def transform_one(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of one document, without building a sparse matrix."""
        return self._row(doc)

    def fit_transform(self, docs) -> sp.csr_matrix:
        docs = list(docs)
        bags = self.bags(docs)
        rows = np.arange(bags.n)
        self.fit_bags(bags, rows)
        X = self.transform_bags(bags, rows)
        self.finalize()
        return X
