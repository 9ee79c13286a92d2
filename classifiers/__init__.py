"""The routing classifier: text normalisation, jieba + TF-IDF features, linear models, artifacts, CLI.

    router = Router.load()                 # once per worker (default_model_path())
    p = router.predict("路灯坏了好几天了")    # Prediction(category, department, urgency, confidence, terms, …)

Imports nothing else of this project."""
from classifiers.router import ModelFileError, ModelVersionWarning, Prediction, Router, default_model_path
from classifiers.taxonomy import Taxonomy, load_taxonomy
from classifiers.text import normalize

__all__ = [
    "ModelFileError",
    "ModelVersionWarning",
    "Prediction",
    "Router",
    "Taxonomy",
    "default_model_path",
    "load_taxonomy",
    "normalize",
]
