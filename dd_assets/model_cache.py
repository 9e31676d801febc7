"""A per-user cache of de-quantized models, so only the first process pays for a GGUF conversion.

An entry is a plain transformers checkpoint (config, safetensors weights, tokenizer) plus a
manifest of its files' sizes and CRC32s, written last. It is built in a temporary folder beside
the cache and renamed into place in one step, so a reader sees a whole entry or none; when two
processes race, the first rename wins and the other drops its copy. An entry that fails its
manifest or its load is moved aside, deleted and rebuilt by the caller.

The key holds everything the converted weights depend on: the package and its version, the file
(name and size), the dtype, the transformers and gguf versions, and this module's format.

``DEEPDECIPHER_MODEL_CACHE`` sets the folder (default ``$XDG_CACHE_HOME/deepdecipher/models``,
i.e. ``~/.cache/deepdecipher/models``); ``off`` disables the cache.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from importlib import metadata
from pathlib import Path

import torch

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "deepdecipher-manifest.json"
WEIGHTS = "model.safetensors"


def cache_root() -> Path | None:
    """The cache folder, or None when ``DEEPDECIPHER_MODEL_CACHE=off``."""
    explicit = os.environ.get("DEEPDECIPHER_MODEL_CACHE", "")
    if explicit.lower() == "off":
        return None
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepdecipher" / "models"


def entry_path(root: Path, package: str, path: Path, dtype: torch.dtype) -> Path:
    """The entry of `path` (a file of installed `package`) de-quantized to `dtype`."""
    parts = {
        "format": FORMAT,
        "package": package,
        "package_version": metadata.version(package),
        "file": path.name,
        "size": path.stat().st_size,
        "dtype": str(dtype),
        "transformers": metadata.version("transformers"),
        "gguf": metadata.version("gguf"),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return root / f"{path.stem}-{str(dtype).removeprefix('torch.')}-{digest}"


def load(entry: Path, dtype: torch.dtype):
    """``(hf_model, tokenizer)`` from a complete, intact entry; None (and the entry removed) if not."""
    if not entry.is_dir():
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        _check_manifest(entry)
        model = AutoModelForCausalLM.from_pretrained(str(entry), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(entry))
    except Exception as err:  # any damage means "rebuild": the GGUF file is the source of truth
        log.warning("model cache entry %s is unusable (%s); rebuilding it", entry, err)
        _discard(entry)
        return None
    return model, tokenizer


def store(entry: Path, model, tokenizer) -> None:
    """Write `model` and `tokenizer` as `entry`, atomically; failures only cost the cache."""
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(entry)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        config = copy.deepcopy(model.config)
        # The weights are plain floats now: the GGUF quantization no longer describes them.
        config.__dict__.pop("quantization_config", None)
        config.save_pretrained(str(tmp))
        # save_model, not model.save_pretrained: transformers refuses to save a model it loaded
        # through its GGUF quantizer, even de-quantized.
        from safetensors.torch import save_model

        save_model(model, str(tmp / WEIGHTS), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp), sort_keys=True))
        os.rename(tmp, entry)
        tmp = None
    except Exception as err:  # a full disk, a read-only home: the model is loaded all the same
        if not (entry / MANIFEST).exists():  # a concurrent writer's rename wins silently
            log.warning("could not write model cache entry %s (%s)", entry, err)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(entry: Path, age_s: float = 3600) -> None:
    """Delete temporary folders of `entry` left by killed writers (none is written for an hour)."""
    now = time.time()
    for leftover in entry.parent.glob(f".{entry.name}.*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > age_s:
                shutil.rmtree(leftover, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, list[int]]:
    """``{file: [size, crc32]}`` of every file of `folder` but the manifest."""
    return {
        f.name: [f.stat().st_size, _crc32(f)]
        for f in sorted(folder.iterdir())
        if f.is_file() and f.name != MANIFEST
    }


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _check_manifest(entry: Path) -> None:
    expected = json.loads((entry / MANIFEST).read_text())
    if not expected or WEIGHTS not in expected:
        raise ValueError("manifest lists no weights")
    if _manifest(entry) != expected:
        raise ValueError("files differ from the manifest")


def _discard(entry: Path) -> None:
    """Move `entry` aside in one step (readers never see half of it), then delete it."""
    trash = entry.parent / f".{entry.name}.discard-{os.getpid()}-{id(entry)}"
    try:
        os.rename(entry, trash)
    except OSError:
        return  # already moved away or replaced by another process
    shutil.rmtree(trash, ignore_errors=True)
