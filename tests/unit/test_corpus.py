"""The labelled corpus (corpus/requests/*.csv) keeps its promises: valid labels and pairs, enough rows per category,
every department, some Traditional, no near-duplicates, and a held-out split disjoint from training."""
from __future__ import annotations

import collections
import csv

import numpy as np
import opencc
import pytest
import scipy.sparse as sp

from classifiers import load_taxonomy, normalize
from classifiers.data import CORPUS_COLUMNS, corpus_files, load_corpus, split

MIN_PER_CATEGORY = 150
NEAR_DUPLICATE = 0.5  # char-3-gram Jaccard


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def test_files_have_the_agreed_header():
    files = corpus_files()
    assert files, "no corpus/requests/*.csv"
    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            assert next(csv.reader(fh)) == list(CORPUS_COLUMNS), path.name


def test_every_row_has_valid_labels_and_an_allowed_pair(corpus, taxonomy):
    bad = [
        (ex.source, ex.text[:30], ex.category, ex.department, ex.urgency)
        for ex in corpus
        if ex.category not in taxonomy.categories
        or ex.department not in taxonomy.departments
        or not taxonomy.allows(ex.category, ex.department)
        or ex.urgency not in taxonomy.urgencies
        or not normalize(ex.text)
    ]
    assert not bad, bad[:10]


def test_enough_rows_per_category_and_every_department(corpus, taxonomy):
    per_category = collections.Counter(ex.category for ex in corpus)
    assert {c: n for c, n in per_category.items() if n < MIN_PER_CATEGORY} == {}
    assert set(per_category) == set(taxonomy.categories)
    assert {ex.department for ex in corpus} == set(taxonomy.departments)
    assert {ex.urgency for ex in corpus} == set(taxonomy.urgencies)


def test_some_requests_are_in_traditional_characters(corpus):
    t2s = opencc.OpenCC("tw2s")
    traditional = [ex for ex in corpus if t2s.convert(ex.text) != ex.text]
    assert 0 < len(traditional) / len(corpus) < 0.5


def near_duplicates(texts: list[str], threshold: float) -> list[tuple[float, str, str]]:
    """Pairs whose char-3-gram sets have Jaccard >= threshold (sparse set intersections: all pairs at once)."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for gram in {text[k:k + 3] for k in range(len(text) - 2)}:
            rows.append(i)
            cols.append(vocab.setdefault(gram, len(vocab)))
    A = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocab)))
    sizes = np.asarray(A.sum(axis=1)).ravel()
    inter = sp.triu(A @ A.T, k=1).tocoo()
    jaccard = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    hits = np.flatnonzero(jaccard >= threshold)
    return [(float(jaccard[h]), texts[inter.row[h]], texts[inter.col[h]]) for h in hits]


def test_near_duplicate_check_finds_near_duplicates():
    texts = ["村口的路灯坏了好几天了晚上黑得很", "村口的路灯坏了好几天了晚上黑得很嘛", "我想申请低保家里困难"]
    found = near_duplicates(texts, NEAR_DUPLICATE)
    assert len(found) == 1 and found[0][1] == texts[0]


def test_no_near_duplicates(corpus):
    texts = [normalize(ex.text) for ex in corpus]
    found = near_duplicates(texts, NEAR_DUPLICATE)
    assert not found, [(round(j, 2), a[:40], b[:40]) for j, a, b in found[:10]]


def test_heldout_split_is_disjoint_from_training(corpus):
    train, heldout = split(corpus)
    assert 0.15 < len(heldout) / len(corpus) < 0.25
    assert not {normalize(ex.text) for ex in train} & {normalize(ex.text) for ex in heldout}
    assert set(ex.category for ex in heldout) == set(ex.category for ex in corpus)
