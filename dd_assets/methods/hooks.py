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


NONNEGATIVE_ACTIVATIONS = ("relu",)


def is_nonnegative(act_fn: str, hook: str = "mlp.hook_post") -> bool:
    """Whether the hooked activation can never go below zero (a ReLU's output).

    Such a model has no negative examples worth serving: its "most negative" documents are zeros.

    >>> is_nonnegative("relu"), is_nonnegative("silu"), is_nonnegative("relu", "mlp.hook_pre")
    (True, False, False)
    """
    return hook == "mlp.hook_post" and act_fn.lower() in NONNEGATIVE_ACTIVATIONS
