"""Build a `TransformerBridge` from a registry entry, and read what the pipeline needs off it.

Every loader goes through TransformerLens 4's bridge: hub names and local Hugging Face directories
via ``boot_transformers``, the packaged SmolLM2 GGUF by de-quantizing it with transformers first
(once per machine: later processes read the converted-model cache, `dd_assets.model_cache`),
and random-weight test models via ``boot_native``. Loaded models are cached per process because
one Dagster run (or one CLI invocation) materializes several assets of the same model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from dd_assets import model_cache
from dd_assets.gguf_loading import convert_gguf
from dd_assets.registry import LoaderSpec, ModelSpec

log = logging.getLogger(__name__)

_cache: dict[str, object] = {}
_lock = threading.Lock()


def default_device() -> str:
    """``DEEPDECIPHER_DEVICE`` if set, else CUDA when present, else CPU."""
    explicit = os.environ.get("DEEPDECIPHER_DEVICE")
    if explicit:
        return explicit
    return "cuda" if torch.cuda.is_available() else "cpu"


def packaged_gguf_path(loader: LoaderSpec) -> Path:
    """Locate a GGUF file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(loader.package or "")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {loader.package!r} is not installed; scripts/setup.sh installs it"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / (loader.file or "")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _boot(spec: ModelSpec, device: str):
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loader, dtype = spec.loader, _dtype(spec.dtype)
    if loader.kind == "native":
        from transformer_lens.config import TransformerBridgeConfig

        tokenizer = AutoTokenizer.from_pretrained(loader.tokenizer)
        cfg = TransformerBridgeConfig(**(loader.config or {}))
        return TransformerBridge.boot_native(cfg, tokenizer=tokenizer, device=device, dtype=dtype)
    if loader.kind == "hub":
        return TransformerBridge.boot_transformers(loader.name, device=device, dtype=dtype)
    if loader.kind == "local":
        directory = loader.path
        tokenizer = AutoTokenizer.from_pretrained(directory)
        hf_model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    else:  # packaged_gguf
        gguf = packaged_gguf_path(loader)
        directory = str(gguf.parent)
        hf_model, tokenizer = load_packaged_gguf(loader.package or "", gguf, dtype)
    return TransformerBridge.boot_transformers(
        directory, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype
    )


def load_packaged_gguf(package: str, path: Path, dtype: torch.dtype):
    """``(hf_model, tokenizer)`` of a packaged GGUF file: from the converted-model cache when it
    holds this file, else converted by transformers (and then cached for later processes)."""
    root = model_cache.cache_root()
    entry = model_cache.entry_path(root, package, path, dtype) if root else None
    cached = model_cache.load(entry, dtype) if entry else None
    if cached is not None:
        log.info("loaded %s from the converted-model cache %s", path.name, entry)
        return cached
    model, tokenizer = convert_gguf(path, dtype)
    if entry:
        model_cache.store(entry, model, tokenizer)
    return model, tokenizer


def boot_bridge(spec: ModelSpec, device: str):
    """A new TransformerBridge of the model in eval mode (no caching: callers keep their own)."""
    log.info("loading model %s (%s) on %s", spec.name, spec.loader.describe(), device)
    bridge = _boot(spec, device)
    bridge.eval()
    return bridge


def weights_key(spec: ModelSpec, device: str) -> str:
    """Two specs with the same key load the same weights (dataset and scan settings aside)."""
    return f"{spec.loader!r}|{spec.dtype}|{device}"


def load_bridge(spec: ModelSpec, device: str | None = None):
    """The model's TransformerBridge in eval mode, loaded once per process and spec."""
    device = device or default_device()
    key = weights_key(spec, device)
    with _lock:
        if key not in _cache:
            bridge = boot_bridge(spec, device)
            _cache.clear()  # keep one model in memory at a time
            _cache[key] = bridge
        return _cache[key]


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_mlp: int
    d_vocab: int
    act_fn: str
    num_parameters: int
    bos_id: int


def model_shape(bridge) -> ModelShape:
    cfg = bridge.cfg
    tok = bridge.tokenizer
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    params = getattr(bridge, "original_model", bridge).parameters()
    return ModelShape(
        n_layers=int(cfg.n_layers),
        d_mlp=int(cfg.d_mlp),
        d_vocab=int(cfg.d_vocab),
        act_fn=str(cfg.act_fn),
        num_parameters=int(sum(p.numel() for p in params)),
        bos_id=int(bos),
    )


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """Display strings of token ids, decoded one by one (so a space prefix shows as a space)."""
    return [tokenizer.decode([i]) for i in ids]


_vocab_cache: dict[tuple[int, int], list[str]] = {}


def vocabulary_strings(tokenizer, d_vocab: int) -> list[str]:
    """Display string of every id below d_vocab (ids past the tokenizer's range show as <id>)."""
    key = (id(tokenizer), d_vocab)
    if key not in _vocab_cache:
        size = len(tokenizer)
        _vocab_cache.clear()
        _vocab_cache[key] = [
            tokenizer.decode([i]) if i < size else f"<{i}>" for i in range(d_vocab)
        ]
    return _vocab_cache[key]


def layer_w_out(bridge, layer: int) -> torch.Tensor:
    """One layer's MLP output weights [d_mlp, d_model], read off its block.

    ``bridge.W_out[layer]`` gives the same tensor but stacks every layer's first (~0.4 s on
    SmolLM2, paid again by each layer's run). Contiguous like a row of that stack: the block's
    own is often a transposed view, and products over it round differently.
    """
    return bridge.blocks[layer].mlp.W_out.contiguous()


def final_norm_weight(bridge) -> torch.Tensor | None:
    """The final norm's effective scale, which the bridge may not have folded into W_U.

    Norms that store an offset (Gemma's RMSNorm multiplies by ``1 + w``) give ``1 + w``.
    """
    ln = getattr(bridge, "ln_final", None)
    w = getattr(ln, "w", None) if ln is not None else None
    if not isinstance(w, torch.Tensor):
        return None
    module = getattr(ln, "original_component", ln)
    return w.detach() + 1 if _offset_norm(module) else w.detach()


def _offset_norm(module) -> bool:
    """Whether a norm module scales by ``1 + weight`` (Gemma-family RMSNorm)."""
    return (
        type(module).__name__.lower().startswith("gemma")
        and "rmsnorm" in type(module).__name__.lower()
    )


def final_norm_centres(bridge) -> bool:
    """Whether the final norm subtracts the mean (LayerNorm) rather than only rescaling (RMSNorm)."""
    kind = str(getattr(bridge.cfg, "normalization_type", "") or "")
    if kind:
        return kind.upper().startswith("LN")
    module = getattr(getattr(bridge, "ln_final", None), "original_component", None)
    return isinstance(module, torch.nn.LayerNorm)
