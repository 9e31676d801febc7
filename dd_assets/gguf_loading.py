"""De-quantize a GGUF checkpoint into a transformers model and tokenizer, parsing the file less.

Loading through ``AutoTokenizer`` and ``AutoModelForCausalLM`` with ``gguf_file`` walks the whole
file three times (the tokenizer's config lookup, the model's config, then the weights) and builds
gguf's tensor-name map once per module (~400 times). Here the config is read once and handed to
the model, the tokenizer class is chosen from that config the way ``AutoTokenizer`` chooses it for
a GGUF directory (which reads only the vocabulary), and the name map is built once per
(architecture, layer count). The weights come from transformers' own GGUF conversion, unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

_patching = threading.Lock()


def convert_gguf(path: Path, dtype: torch.dtype):
    """``(hf_model, tokenizer)`` of a GGUF file, de-quantized to `dtype` by transformers."""
    from transformers import AutoConfig, AutoModelForCausalLM

    directory, kwargs = str(path.parent), {"gguf_file": path.name}
    config = AutoConfig.from_pretrained(directory, **kwargs)
    tokenizer = gguf_tokenizer_class(directory, config).from_pretrained(directory, **kwargs)
    with _name_map_built_once():
        model = AutoModelForCausalLM.from_pretrained(
            directory, config=config, dtype=dtype, **kwargs
        )
    return model, tokenizer


def gguf_tokenizer_class(directory: str, config):
    """The class ``AutoTokenizer`` picks for a GGUF file in `directory` whose config is `config`.

    A GGUF directory has no ``tokenizer_config.json`` and its config names no tokenizer class, so
    ``AutoTokenizer`` takes the class registered for the config type, else the generic
    ``TokenizersBackend``. Anything else (a tokenizer config beside the file, a declared class, a
    Mistral backend) is left to ``AutoTokenizer`` itself.
    """
    from transformers import TOKENIZER_MAPPING, AutoTokenizer, TokenizersBackend

    if (Path(directory) / "tokenizer_config.json").exists() or getattr(
        config, "tokenizer_class", None
    ):
        return AutoTokenizer
    cls = TOKENIZER_MAPPING.get(type(config), TokenizersBackend)
    return AutoTokenizer if cls is None or cls.__name__ == "MistralCommonBackend" else cls


@contextlib.contextmanager
def _name_map_built_once() -> Iterator[None]:
    """Memoize gguf's ``get_tensor_name_map`` while transformers maps tensor names.

    transformers calls it for every submodule with the same (architecture, layer count); each call
    rebuilds the same read-only table (~25 ms, ~400 calls for a 30-layer model). transformers
    imports the function at call time, so the memoized one is what it gets inside this block.
    """
    import gguf

    with _patching:  # two loads at once must not restore each other's wrapper
        original = gguf.get_tensor_name_map
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original)
        try:
            yield
        finally:
            gguf.get_tensor_name_map = original
