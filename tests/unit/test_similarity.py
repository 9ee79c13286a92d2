"""Text similarity on the router's features: one matter in other words scores high, another matter low."""
import pytest

from classifiers.similarity import TextSimilarity


@pytest.fixture(scope="module")
def similarity(trained_router):
    return TextSimilarity(trained_router)


def test_the_same_matter_in_other_words_scores_above_another_matter(similarity):
    same, other, empty = similarity.scores("幸福村3组路灯坏了,晚上一片黑",
                                           ["3组的路灯不亮好几天了", "村口垃圾堆好几天没人清理", ""])
    assert same > 0.2 > other
    assert empty == 0.0


def test_pairwise_is_symmetric_with_ones_on_the_diagonal(similarity):
    texts = ["路灯坏了", "路灯不亮", "自来水停了两天"]
    m = similarity.pairwise(texts)
    assert m.shape == (3, 3)
    assert m == pytest.approx(m.T)
    assert [m[i, i] for i in range(3)] == pytest.approx([1.0, 1.0, 1.0])
    assert m[0, 1] > m[0, 2]
    assert similarity.pairwise([]).shape == (0, 0)


def test_top_terms_name_what_the_reports_share(similarity):
    terms = similarity.top_terms(["幸福村3组路灯坏了,晚上一片黑", "3组的路灯不亮好几天了", "路灯坏了晚上看不见"], 3)
    assert terms[0] == "路灯"
    assert len(terms) == 3 and all(len(t) >= 2 for t in terms)
    assert similarity.top_terms([]) == []
