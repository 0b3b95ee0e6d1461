"""The random baseline: seeded uniform scores, the floor every method must beat."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from harness.algorithms.param_spec import hyperparameters
from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores


@hyperparameters()
def random_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch] | None = None,
    official_edges: Iterable[str] | None = None,
    *,
    seed: int = 0,
) -> PruneScores:
    """Uniform random scores in [0, 1) for every edge, from ``seed``.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> a = random_prune_scores(planted.patchable, seed=1)
        >>> b = random_prune_scores(planted.patchable, seed=1)
        >>> bool((a.scores == b.scores).all())
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    generator = torch.Generator().manual_seed(int(seed))
    scores = torch.rand(patchable.n_edges, generator=generator, dtype=torch.float64)
    return PruneScores(patchable.graph.edge_names, scores)
