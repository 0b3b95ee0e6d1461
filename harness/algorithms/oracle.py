"""The oracle: scores are membership in the official circuit (a check, not a method)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from harness.algorithms.param_spec import hyperparameters
from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores


@hyperparameters()
def oracle_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch] | None = None,
    official_edges: Iterable[str] | None = None,
) -> PruneScores:
    """1 for every official edge, 0 for every other edge: AUC 1.0 by construction.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> scores = oracle_prune_scores(planted.patchable, None, planted.edges)
        >>> sorted(scores.top(8)) == sorted(planted.edges)
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    if official_edges is None:
        raise ValueError("the oracle needs official_edges (a task's ground truth)")
    index = patchable.graph.edge_indices(official_edges)
    scores = torch.zeros(patchable.n_edges, dtype=torch.float64)
    scores[index] = 1.0
    return PruneScores(patchable.graph.edge_names, scores)
