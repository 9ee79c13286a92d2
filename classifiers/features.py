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

from collections import Counter
from bisect import bisect_left
from itertools import accumulate, repeat

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
    # Vectorised over the whole batch: Python only maps each text's words to vocabulary indices (map(dict.get),
    # a C loop); the character n-grams of all texts are integer ids computed from one array of code points,
    # looked up with searchsorted, and counting, tf-idf and the per-block L2 norms are numpy operations on the
    # batch. The head blocks are the words and n-grams that lie inside the first head_chars characters.

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_lookup", None)
        return state

    def _word_lookup(self) -> tuple[dict[str, int], np.ndarray]:
        """Word -> index, and per word block the column of each index (-1: not in that block's vocabulary;
        the extra last slot is where an unknown word, index -1, lands)."""
        cached = self.__dict__.get("_lookup")
        if cached is None:
            index: dict[str, int] = {}
            for vocab in self.word_vocab_:
                for w in vocab:
                    index.setdefault(w, len(index))
            cols = np.full((2, len(index) + 1), -1, dtype=np.int64)
            for b, vocab in enumerate(self.word_vocab_):
                for w, j in vocab.items():
                    cols[b, index[w]] = j
            cached = self._lookup = (index, cols)
        return cached

    def _word_entries(self, docs) -> list[tuple[np.ndarray, np.ndarray]]:
        """(document, column) of each known word occurrence, for the word block and the head word block."""
        index, columns = self._word_lookup()
        get = index.get
        head_chars = self.head_chars
        ids: list[list[int]] = [[], []]
        lengths: list[list[int]] = [[], []]
        for doc in docs:
            doc_ids = list(map(get, doc.words, repeat(-1)))
            ids[0] += doc_ids
            lengths[0].append(len(doc_ids))
            if len(doc.chars) > head_chars:  # the words that start inside the head (as _head_words)
                starts = list(accumulate(map(len, doc.words), initial=0))
                doc_ids = doc_ids[: min(len(doc_ids), bisect_left(starts, head_chars))]
            ids[1] += doc_ids
            lengths[1].append(len(doc_ids))
        out = []
        for b in range(2):
            cols = columns[b][np.asarray(ids[b], dtype=np.int64)]
            doc_of = np.repeat(np.arange(len(lengths[b]), dtype=np.int64), lengths[b])
            known = cols >= 0
            out.append((doc_of[known], cols[known]))
        return out

    def _char_entries(self, docs) -> list[tuple[np.ndarray, np.ndarray]]:
        """(document, column) of each known char-gram occurrence, for the char block and the head char block."""
        lo, hi = self.char_ngrams
        lengths = np.fromiter((len(d.chars) for d in docs), dtype=np.int64, count=len(docs))
        # all texts in one array of code points, each followed by a 0 that no n-gram may span
        joined = "\0".join(d.chars for d in docs) + "\0"
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths + 1)
        pos = np.arange(len(codes), dtype=np.int64) - np.repeat(np.cumsum(lengths + 1) - (lengths + 1), lengths + 1)
        zero = codes == 0
        ids, spans_zero = codes, zero
        gram_ids, gram_docs, gram_ends = [], [], []
        for n in range(1, hi + 1):
            if n > 1:
                ids = (ids[:-1] << _BITS) | codes[n - 1:]
                spans_zero = spans_zero[:-1] | zero[n - 1:]
            if n >= lo:
                keep = ~spans_zero
                gram_ids.append(ids[keep])
                gram_docs.append(doc_of[: len(ids)][keep])
                gram_ends.append(pos[: len(ids)][keep] + n)
        gram_ids, gram_docs, gram_ends = (np.concatenate(a) for a in (gram_ids, gram_docs, gram_ends))
        out = []
        for b, rows in enumerate((slice(None), gram_ends <= self.head_chars)):
            g_ids, g_docs = gram_ids[rows], gram_docs[rows]
            keys = self.char_keys_[b]
            if not len(keys):
                out.append((g_docs[:0], g_ids[:0]))
                continue
            at = np.searchsorted(keys, g_ids)
            at[at == len(keys)] = 0
            known = keys[at] == g_ids
            out.append((g_docs[known], self.char_cols_[b][at[known]]))
        return out

    def _entries(self, docs) -> tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Per block (w, c, hw, hc): (document, column, tf-idf value) of docs' known features, sorted by
        document and column."""
        docs = docs if isinstance(docs, (list, tuple)) else list(docs)
        n = len(docs)
        (w, hw), (c, hc) = self._word_entries(docs), self._char_entries(docs)
        width = max(self.n_features, 1)
        blocks = []
        for doc_of, cols in (w, c, hw, hc):
            keys, tf = np.unique(doc_of * width + cols, return_counts=True)
            doc_of, cols = keys // width, keys % width
            values = (1.0 + np.log(tf)) * self.idf_[cols]
            norms = np.sqrt(np.bincount(doc_of, weights=values * values, minlength=n))
            values /= norms[doc_of]
            blocks.append((doc_of, cols, values))
        return n, blocks

    def transform(self, docs) -> sp.csr_matrix:
        n, blocks = self._entries(docs)
        doc_of, columns, values = (np.concatenate(parts) for parts in zip(*blocks))
        # stable by document: within a row the blocks follow each other, so the columns come out sorted
        order = np.argsort(doc_of, kind="stable")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc_of, minlength=n), out=indptr[1:])
        return sp.csr_matrix((values[order], columns[order], indptr), shape=(n, self.n_features))

    def transform_one(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of one document, without building a sparse matrix."""
        _, blocks = self._entries([doc])
        return np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks])

    def fit_transform(self, docs) -> sp.csr_matrix:
        docs = list(docs)
        bags = self.bags(docs)
        rows = np.arange(bags.n)
        self.fit_bags(bags, rows)
        X = self.transform_bags(bags, rows)
        self.finalize()
        return X
