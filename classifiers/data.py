"""Reading labelled CSV files, the project corpus, and its deterministic held-out split."""
from __future__ import annotations

import csv
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from classifiers.text import corpus_dir, normalize

HELDOUT_PERCENT = 20
CORPUS_COLUMNS = ("text", "category", "department", "urgency")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class DataError(ValueError):
    """A user mistake in the data (missing file or column, no rows): reported in one line, no traceback."""


@dataclass(frozen=True)
class Example:
    text: str
    category: str | None = None
    department: str | None = None
    urgency: str | None = None
    label: str | None = None
    source: str = ""


def _open_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_file():
        raise DataError(f"not a file: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: unreadable CSV ({exc})") from None
    if not header:
        raise DataError(f"{path}: empty file (no header row)")
    return header, rows


def _require(path: Path, header: list[str], columns) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (the header has: {', '.join(header)})")


def read_labelled_csv(path: str | Path, text_columns: list[str], label_column: str) -> list[Example]:
    """Rows of a generic CSV: several text columns are joined with a space; rows without text or label skipped."""
    path = Path(path)
    header, rows = _open_rows(path)
    _require(path, header, [*text_columns, label_column])
    out = []
    for row in rows:
        text = " ".join((row.get(c) or "").strip() for c in text_columns).strip()
        label = (row.get(label_column) or "").strip()
        if text and label:
            out.append(Example(text=text, label=label, source=path.name))
    if not out:
        raise DataError(f"{path}: no rows with both text and {label_column}")
    return out


def read_corpus_csv(path: str | Path, text_column: str = "text") -> list[Example]:
    path = Path(path)
    header, rows = _open_rows(path)
    _require(path, header, [text_column, "category", "department"])
    out = []
    for row in rows:
        text = (row.get(text_column) or "").strip()
        if not text:
            continue
        out.append(Example(
            text=text,
            category=(row.get("category") or "").strip() or None,
            department=(row.get("department") or "").strip() or None,
            urgency=(row.get("urgency") or "").strip() or None,
            source=path.name,
        ))
    return out


def corpus_files(directory: str | Path | None = None) -> list[Path]:
    return sorted((Path(directory) if directory else corpus_dir() / "requests").glob("*.csv"))


def load_corpus(directory: str | Path | None = None) -> list[Example]:
    files = corpus_files(directory)
    if not files:
        raise DataError(f"no corpus files: {Path(directory) if directory else corpus_dir() / 'requests'}/*.csv")
    rows = [ex for f in files for ex in read_corpus_csv(f)]
    if not rows:
        raise DataError("the corpus files hold no rows")
    return rows


def split_key(text: str) -> int:
    return int(hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()[:8], 16) % 100


def is_heldout(text: str) -> bool:
    """The held-out split: decided by a stable hash of the normalised text (~20%), so a text is held out in
    every corpus version that contains it, and its Traditional twin falls on the same side."""
    return split_key(text) < HELDOUT_PERCENT


def split(rows: list[Example]) -> tuple[list[Example], list[Example]]:
    train, heldout = [], []
    for ex in rows:
        (heldout if is_heldout(ex.text) else train).append(ex)
    return train, heldout


def content_hash(examples) -> str:
    h = hashlib.sha256()
    for ex in examples:
        for part in (ex.text, ex.category, ex.department, ex.urgency, ex.label):
            h.update((part or "").encode("utf-8"))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return h.hexdigest()
