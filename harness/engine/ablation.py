"""Ablation sources: the values an ablated edge carries instead of its live value."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel

ABLATIONS = ("resample", "mean", "zero")


def check_ablation(ablation: str) -> str:
    if ablation not in ABLATIONS:
        raise ValueError(f"ablation {ablation!r} is not one of {', '.join(ABLATIONS)}")
    return ablation


@torch.no_grad()
def ablation_activations(
    patchable: PatchableModel, batches: Sequence[PromptBatch], ablation: str
) -> dict[str, Tensor]:
    """Per batch key, the source values an ablated edge carries.

    - ``resample``: the sources on the batch's corrupt prompts, ``[batch, n_src, pos, d]``.
    - ``mean``: the tokenwise mean of the sources over every corrupt prompt of all
      batches, ``[1, n_src, pos, d]`` (prompts must share one length).
    - ``zero``: zeros, ``[1, n_src, pos, d]``.

    Example:
        >>> import torch
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> acts = ablation_activations(planted.patchable, planted.batches[:1], "zero")
        >>> float(acts[planted.batches[0].key].abs().sum())
        0.0
    """
    check_ablation(ablation)
    if ablation == "resample":
        return {b.key: patchable.source_activations(b.corrupt) for b in batches}
    lengths = {b.clean.shape[1] for b in batches}
    if len(lengths) != 1:
        raise ValueError(f"{ablation} ablation needs prompts of one length, got {sorted(lengths)}")
    shape = (1, patchable.graph.n_sources, lengths.pop(), patchable.model.cfg.d_model)
    if ablation == "zero":
        value = torch.zeros(shape, device=patchable.device, dtype=patchable.dtype)
    else:
        total = torch.zeros(shape, device=patchable.device, dtype=torch.float64)
        count = 0
        for b in batches:
            total += patchable.source_activations(b.corrupt).sum(0, keepdim=True)
            count += b.size
        value = (total / count).to(patchable.dtype)
    return {b.key: value for b in batches}
