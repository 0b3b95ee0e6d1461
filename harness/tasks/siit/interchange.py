"""Interchange interventions on nodes: read nodes' activations on source prompts, run
base prompts with some nodes' activations replaced by them.

Example:
    >>> import torch
    >>> from transformer_lens import HookedTransformer, HookedTransformerConfig
    >>> model = HookedTransformer(HookedTransformerConfig(n_layers=1, d_model=8, n_ctx=4,
    ...     d_head=2, n_heads=4, d_vocab=5, act_fn="gelu", normalization_type=None))
    >>> base, source = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[0, 3, 2, 1]])
    >>> nodes = ("A0.0", "A0.1", "A0.2", "A0.3", "MLP 0")
    >>> same = run_patched(model, base, node_activations(model, base, nodes))
    >>> torch.allclose(same, model(base)), torch.allclose(run_patched(model, base, {}), same)
    (True, True)
    >>> moved = run_patched(model, base, node_activations(model, source, ["A0.2"]))
    >>> torch.allclose(moved, model(base))
    False
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from harness.tasks.siit.alignment import node_hook


def node_activations(model: Any, tokens: Tensor, nodes: Iterable[str]) -> dict[str, Tensor]:
    """Each node's activation on ``tokens`` (no gradient): a head's ``[batch, pos, d_head]``
    slice of ``hook_z``, an MLP's ``[batch, pos, d_model]`` output."""
    nodes = tuple(nodes)
    hooks = {node_hook(node)[0] for node in nodes}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in hooks)
    taken = {}
    for node in nodes:
        hook, head = node_hook(node)
        taken[node] = cache[hook] if head is None else cache[hook][:, :, head]
    return taken


def run_patched(model: Any, tokens: Tensor, patches: dict[str, Tensor]) -> Tensor:
    """Logits ``[batch, pos, d_vocab_out]`` of ``tokens`` with each node of ``patches``
    set to the given activation (shapes as :func:`node_activations` gives them)."""
    return run_row_patched(model, tokens, {n: (v, slice(None)) for n, v in patches.items()})


def run_row_patched(model: Any, tokens: Tensor, patches: dict[str, tuple[Tensor, slice]]) -> Tensor:
    """Logits ``[batch, pos, d_vocab_out]`` of ``tokens`` with each node of ``patches`` set,
    in the prompts of its ``slice`` only, to its activation ``[rows, pos, ...]``; the
    other prompts run as they are, gradients included (several interventions share one
    forward pass as slices of one batch)."""
    return _run_rows(model, tokens, patches)


def run_row_resampled(
    model: Any, tokens: Tensor, patches: dict[str, tuple[slice, slice]]
) -> Tensor:
    """Logits ``[batch, pos, d_vocab_out]`` of ``tokens`` where each node of ``patches``
    takes, in the prompts of its first slice, its activation in the prompts of its second
    slice *of the same forward pass* (the source prompts ride along unpatched). Unlike
    :func:`run_row_patched` with values read beforehand, the gradient flows through the
    source prompts' activations too: a loss on the patched prompts trains the node itself.

    Example:
        >>> from transformer_lens import HookedTransformer, HookedTransformerConfig
        >>> model = HookedTransformer(HookedTransformerConfig(n_layers=1, d_model=8,
        ...     n_ctx=4, d_head=2, n_heads=4, d_vocab=5, act_fn="gelu",
        ...     normalization_type=None))
        >>> base, source = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[0, 3, 2, 1]])
        >>> both = run_row_resampled(model, torch.cat([base, source]),
        ...                          {"A0.2": (slice(0, 1), slice(1, 2))})
        >>> apart = run_patched(model, base, node_activations(model, source, ["A0.2"]))
        >>> torch.allclose(both[:1], apart, atol=1e-6)
        True
    """
    return _run_rows(model, tokens, {n: (source, rows) for n, (rows, source) in patches.items()})


def _run_rows(
    model: Any, tokens: Tensor, patches: dict[str, tuple[Tensor | slice, slice]]
) -> Tensor:
    """Each node of ``patches`` set, in its rows, to a given activation (a tensor) or to
    its own activation in other rows of the same pass (a slice)."""
    by_hook: dict[str, list[tuple[int | None, Tensor | slice, slice]]] = defaultdict(list)
    for node, (what, rows) in patches.items():
        hook, head = node_hook(node)
        by_hook[hook].append((head, what, rows))

    def patch(activation: Tensor, hook: Any) -> Tensor:
        patched = activation.clone()
        for head, what, rows in by_hook[hook.name]:
            if isinstance(what, slice):  # the node's own activation in other rows
                what = activation[what] if head is None else activation[what, :, head]
            if head is None:
                patched[rows] = what.to(activation.dtype)
            else:
                patched[rows, :, head] = what.to(activation.dtype)
        return patched

    return model.run_with_hooks(tokens, fwd_hooks=[(hook, patch) for hook in by_hook])
