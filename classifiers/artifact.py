"""The model artifact file: what a trained router is on disk (one pickle, written atomically, read safely).

An artifact is a dict: format, kind ("routing" or "generic"), version, created_at, featurizer, models, metrics,
corpus_hash, libraries (versions it was trained with), analyzer (jieba's HMM setting), taxonomy (allowed pairs and
the most urgent level), danger (corpus/danger.toml as it was at training) and, for a routing model, screen (the
learned not-a-request model, classifiers/screen.py). Readers tolerate artifacts without danger or screen (older
files): the Router then falls back to the artifact's old danger words and to the screen's rules alone.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import pickle
import platform
import tempfile
import warnings
from pathlib import Path

from classifiers.features import Featurizer
from classifiers.model import LinearModel
from classifiers.taxonomy import Taxonomy
from classifiers.text import JIEBA_HMM, REPO_ROOT

ARTIFACT_FORMAT = "sidan-router/1"


class ModelVersionWarning(UserWarning):
    """The artifact was written by other library versions than the running ones."""


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not a sidan model."""


def default_model_path() -> Path:
    env = os.environ.get("SIDAN_CLASSIFIER_MODEL_PATH")
    return Path(env) if env else REPO_ROOT / "var" / "models" / "router.pkl"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "jieba", "opencc"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "?"
    return out


def make_artifact(kind: str, featurizer: Featurizer, models: dict[str, LinearModel], metrics: dict, *,
                  corpus_hash: str, taxonomy: Taxonomy | None = None, danger: dict | None = None,
                  extra: dict | None = None) -> dict:
    """danger: the danger list's data (DangerList.data), kept so that the model still knows it without corpus/."""
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    art = {
        "format": ARTIFACT_FORMAT,
        "kind": kind,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "featurizer": featurizer,
        "models": models,
        "metrics": metrics,
        "corpus_hash": corpus_hash,
        "libraries": library_versions(),
        "analyzer": {"jieba_hmm": JIEBA_HMM},
        "taxonomy": {
            "pairs": sorted(taxonomy.pairs) if taxonomy else [],
            "most_urgent": taxonomy.most_urgent if taxonomy else "急难事",
        },
        "danger": danger or {},
        **(extra or {}),
    }
    digest = hashlib.sha256(f"{corpus_hash}|{art['created_at']}|{sorted(metrics.items())!r}".encode()).hexdigest()
    art["version"] = f"{kind}-{created.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"
    return art


def write_artifact(artifact: dict, path: str | Path) -> Path:
    """Atomically: written to a temporary file next to the target, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(artifact, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the server's workers may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _Unpickler(pickle.Unpickler):
    """Only what an artifact holds: our two classes, numpy arrays and a few builtins — nothing that runs code."""

    ALLOWED = {
        ("classifiers.model", "LinearModel"),
        ("classifiers.features", "Featurizer"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "tuple"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a model file")


def read_artifact(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no model at {path}: train one with `sidan classify train`")
    try:
        data = path.read_bytes()
        artifact = _Unpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError, IndexError,
            OSError) as exc:
        raise ModelFileError(f"{path} is not a readable sidan model ({type(exc).__name__}: {exc})") from None
    if not isinstance(artifact, dict) or artifact.get("format") != ARTIFACT_FORMAT:
        raise ModelFileError(f"{path} is not a sidan model artifact ({ARTIFACT_FORMAT})")
    trained, running = artifact.get("libraries", {}), library_versions()
    differ = {k: (trained.get(k), running[k]) for k in running if k != "python" and trained.get(k) != running[k]}
    if differ:
        what = ", ".join(f"{k} {a} → {b}" for k, (a, b) in sorted(differ.items()))
        warnings.warn(
            f"model {path.name} was trained with other library versions ({what}); its answers may differ — "
            f"retrain with `sidan classify train`",
            ModelVersionWarning,
            stacklevel=3,
        )
    return artifact
