"""The routing classifier: text normalisation, jieba + TF-IDF features, linear models, artifacts, CLI.

    router = Router.load()                 # once per worker (default_model_path())
    p = router.predict("路灯坏了好几天了")    # Prediction(category, department, urgency, confidence, terms, …)
    ps = router.predict_many(texts)        # the same answers for a batch, computed together

What a Prediction tells the caller besides the routing (classifiers/router.py has the details):
    p.request: bool, p.not_request_reason: str | None   no request at all ("你好10", "测试", "asdfgh", "在吗", an emoji):
        answer it, do not file an order; the reason is a code of REASONS (classifiers/screen.py)
    p.danger: bool, p.danger_kind: str | None, p.danger_advice: str | None   immediate danger (corpus/danger.toml):
        the urgency is 急难事, the staff on duty are alerted (orders/duty.py), the advice goes into the resident's reply
    router.is_request(text) -> (bool, reason | None)    the screen's verdict alone

Imports nothing else of this project."""
from classifiers.danger import Danger, DangerList, load_danger
from classifiers.router import ModelFileError, ModelVersionWarning, Prediction, Router, default_model_path
from classifiers.screen import REASONS
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import normalize

__all__ = [
    "REASONS",
    "Danger",
    "DangerList",
    "ModelFileError",
    "ModelVersionWarning",
    "Prediction",
    "Router",
    "Taxonomy",
    "default_model_path",
    "load_danger",
    "load_taxonomy",
    "normalize",
]
