"""Text to scan: the Python standard library by default, local files or HF datasets by configuration.

The default needs no download beyond the install: reference prose from ``pydoc_data.topics``,
docstrings parsed (not imported) from the standard library's sources, and the sources themselves
as code, mixed about 80 % prose / 20 % code like Neuroscope's C4 + code datasets. It is
deterministic for a given Python version: files are read in sorted order and shuffled with a
fixed seed.
"""

from __future__ import annotations

import ast
import json
import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from dd_assets.registry import DatasetSpec

PROSE_SHARE = 0.8
_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo", "__pycache__"}


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        p
        for p in root.rglob("*.py")
        if not _SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])
        and not p.name.startswith("test_")
    )


def _docstrings(path: Path, rel: str) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc and len(doc) >= 200:
                yield f"doc:{rel}", doc


def stdlib_pieces(seed: int = 0) -> Iterator[tuple[str, str]]:
    """(source, text) pieces of the standard library, ~80 % prose and ~20 % code by characters."""
    from pydoc_data.topics import topics

    files = _stdlib_files()
    root = Path(sysconfig.get_paths()["stdlib"])
    prose = [(f"pydoc:{name}", topics[name]) for name in sorted(topics)]
    code = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        prose.extend(_docstrings(path, rel))
        try:
            code.append((f"code:{rel}", path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    rng = random.Random(seed)
    rng.shuffle(prose)
    rng.shuffle(code)
    # Interleave so that any prefix of the stream keeps the mix.
    prose_chars = code_chars = 0
    pi = ci = 0
    while pi < len(prose) or ci < len(code):
        want_code = code_chars < (1 - PROSE_SHARE) * (prose_chars + code_chars + 1)
        if (want_code and ci < len(code)) or pi >= len(prose):
            source, text = code[ci]
            ci += 1
            text = text[:8000]  # long modules would crowd out the rest of the code
            code_chars += len(text)
        else:
            source, text = prose[pi]
            pi += 1
            prose_chars += len(text)
        yield source, text


def file_pieces(spec: DatasetSpec) -> Iterator[tuple[str, str]]:
    """Pieces from a local file or folder: plain text files, JSONL (`column` field) or Parquet."""
    root = Path(spec.path or "")
    paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    if not paths or not paths[0].exists():
        raise FileNotFoundError(f"dataset path {root} has no files")
    for path in paths:
        if spec.format == "text":
            yield f"file:{path.name}", path.read_text(encoding="utf-8", errors="replace")
        elif spec.format == "jsonl":
            with path.open(encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if line.strip():
                        yield f"file:{path.name}:{i}", json.loads(line)[spec.column]
        else:
            import polars as pl

            for i, text in enumerate(pl.read_parquet(path, columns=[spec.column])[spec.column]):
                yield f"file:{path.name}:{i}", text


def hf_pieces(spec: DatasetSpec) -> Iterator[tuple[str, str]]:
    """Pieces streamed from a Hugging Face dataset (needs network access to the hub)."""
    from datasets import load_dataset

    data = load_dataset(spec.name, split=spec.split, streaming=True)
    for i, row in enumerate(data):
        yield f"hf:{spec.name}:{i}", row[spec.column]


def text_pieces(spec: DatasetSpec) -> Iterator[tuple[str, str]]:
    if spec.kind == "stdlib":
        return stdlib_pieces()
    if spec.kind == "files":
        return file_pieces(spec)
    return hf_pieces(spec)
