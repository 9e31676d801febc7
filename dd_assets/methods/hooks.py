"""TransformerLens hook names, built in one place."""

from __future__ import annotations


def hook_name(layer: int, hook: str = "mlp.hook_post") -> str:
    """Full hook name of a block-level hook.

    >>> hook_name(3)
    'blocks.3.mlp.hook_post'
    >>> hook_name(0, "mlp.hook_mid")
    'blocks.0.mlp.hook_mid'
    """
    return f"blocks.{layer}.{hook}"
