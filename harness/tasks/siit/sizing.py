"""The size of the trained model that implements a compiled tracr program.

InterpBench's sizing (Gupta et al. 2024): as many layers as tracr's but at least 2, as many
heads as tracr's but at least 4, half tracr's head width, a residual of four heads' width,
an MLP four times the residual, GELU, no LayerNorm. Attention stays bidirectional like
tracr's: with a causal mask a program that reads later positions cannot be learned.

Example:
    >>> cfg = trained_config({"n_layers": 1, "n_heads": 1, "d_head": 5, "d_vocab": 5,
    ...                       "d_vocab_out": 6, "n_ctx": 6})
    >>> cfg["n_layers"], cfg["n_heads"], cfg["d_head"], cfg["d_model"], cfg["d_mlp"]
    (2, 4, 2, 8, 32)
"""

from __future__ import annotations

from typing import Any

MIN_LAYERS = 2
MIN_HEADS = 4


def trained_config(tracr_config: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """``HookedTransformerConfig`` keyword arguments of the trained model for a compiled
    program's config (``CompiledTracr.config``)."""
    d_head = max(1, int(tracr_config["d_head"]) // 2)
    d_model = 4 * d_head
    return {
        "n_layers": max(MIN_LAYERS, int(tracr_config["n_layers"])),
        "n_heads": max(MIN_HEADS, int(tracr_config["n_heads"])),
        "d_head": d_head,
        "d_model": d_model,
        "d_mlp": 4 * d_model,
        "d_vocab": int(tracr_config["d_vocab"]),
        "d_vocab_out": int(tracr_config["d_vocab_out"]),
        "n_ctx": int(tracr_config["n_ctx"]),
        "act_fn": "gelu",
        "normalization_type": None,
        "attention_dir": "bidirectional",
        "seed": seed,
    }


def parameter_count(model: Any) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
