"""How alike reports read, on the router's own features (jieba words and character n-grams, TF-IDF).

    similarity = TextSimilarity(router)          # once per worker, beside the router
    similarity.scores("小区路灯坏了", ["路灯不亮了", "垃圾没人清"])   # cosine per other text, in [0, 1]
    similarity.pairwise(texts)                    # the square matrix, for clustering
    similarity.top_terms(texts, 3)                # the words a group of reports shares, strongest first

Two residents describing one broken lamp rarely write the same sentence, but their words and character pairs
(路灯, 灯坏) overlap; the cosine of the router's feature vectors measures that overlap without a second model to
train or keep in step with the first. Duplicate detection (合并工单) and hot spots (热点诉求) both read it."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from classifiers.router import Router, _readable
from classifiers.text import analyze, normalize


class TextSimilarity:
    def __init__(self, router: Router) -> None:
        self._featurizer = router.featurizer
        self._hmm = router._hmm  # tokenise as the model was trained
        self._names = [_readable(name) for name in self._featurizer.names_]

    def vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text, L2-normalised (an empty or unreadable text is a zero row: alike to nothing)."""
        docs = [analyze(normalize(text or ""), normalized=True, hmm=self._hmm) for text in texts]
        X = self._featurizer.transform(docs).tocsr()
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ X)

    def scores(self, text: str, others: Sequence[str]) -> list[float]:
        """Cosine similarity of text with each of others, in others' order."""
        if not others:
            return []
        X = self.vectors([text, *others])
        return [float(min(max(s, 0.0), 1.0)) for s in (X[1:] @ X[0].T).toarray().ravel()]

    def pairwise(self, texts: Sequence[str]) -> np.ndarray:
        """The n×n cosine matrix of texts (1 on the diagonal for every readable text)."""
        if not texts:
            return np.zeros((0, 0))
        X = self.vectors(texts)
        return np.clip((X @ X.T).toarray(), 0.0, 1.0)

    def top_terms(self, texts: Sequence[str], n: int = 5) -> list[str]:
        """The readable terms with the greatest summed weight over texts, none contained in a stronger one."""
        if not texts:
            return []
        X = self.vectors(texts)
        totals = np.asarray(X.sum(axis=0)).ravel()
        picked: list[str] = []
        for col in np.argsort(-totals, kind="stable"):
            if totals[col] <= 0:
                break
            name = self._names[col]
            if name is None or len(name) < 2 or any(name in other or other in name for other in picked):
                continue  # one character says little; "路灯" and "路灯坏" are one term
            picked.append(name)
            if len(picked) == n:
                break
        return picked
