"""How well a circuit alone reproduces the model: one circuit, or the top-k edges of a ranking
for several k (the faithfulness curve), on the task's prompt batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from harness.engine.ablation import ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import (
    correct_percent,
    kl_divergence,
    logit_difference_percent,
    mean_squared_error,
)
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores


@torch.no_grad()
def circuit_faithfulness(
    patchable: PatchableModel,
    batches: Sequence[PromptBatch],
    circuit: Iterable[str],
    ablation: str = "resample",
) -> dict[str, float]:
    """How well a circuit alone reproduces the model, averaged over examples.

    Every edge outside ``circuit`` carries its ablation value; the clean prompt runs.

    Returns:
        ``kl_div`` (to the full model), ``mse`` (to the answers for regression tasks,
        else to the full model's logits), and for classification tasks
        ``correct_percent`` and, where batches have wrong answers,
        ``logit_diff_percent`` (logit difference recovered, % of the full model's).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> circuit_faithfulness(planted.patchable, planted.batches, planted.edges)["kl_div"]
        0.0
    """
    keep = set(circuit)
    weights = patchable.edge_weights([e for e in patchable.graph.edge_names if e not in keep])
    return _faithfulness_at(patchable, batches, weights, ablation)[0]  # weights: [1, n_edges]


@torch.no_grad()
def faithfulness_curve(
    patchable: PatchableModel,
    batches: Sequence[PromptBatch],
    scores: PruneScores,
    edge_counts: Sequence[int],
    ablation: str = "resample",
) -> list[dict[str, float]]:
    """Faithfulness of the top-k edges (by |score|) for every k in ``edge_counts``.

    Each entry is :func:`circuit_faithfulness`'s dict plus ``n_edges``.
    """
    ranked = scores.top(len(scores))
    index = {name: i for i, name in enumerate(patchable.graph.edge_names)}
    all_weights = torch.ones(
        len(edge_counts), patchable.n_edges, device=patchable.device, dtype=patchable.dtype
    )  # [n_circuits, n_edges]; 1 ablates an edge
    for row, k in enumerate(edge_counts):
        all_weights[row, [index[name] for name in ranked[: int(k)]]] = 0.0
    rows = _faithfulness_at(patchable, batches, all_weights, ablation)
    return [{"n_edges": int(k), **row} for k, row in zip(edge_counts, rows, strict=True)]


@torch.no_grad()
def _faithfulness_at(patchable, batches, all_weights, ablation) -> list[dict[str, float]]:
    device = patchable.device
    batches = [b.to(device) for b in batches]
    if not batches:
        raise ValueError("faithfulness needs at least one batch")
    patches = ablation_activations(patchable, batches, ablation)
    sums = [dict.fromkeys(_measure_names(batches[0]), 0.0) for _ in all_weights]
    n_examples = 0
    for batch in batches:
        full = batch.output_logits(patchable.model(batch.clean))
        circuits = patchable.circuit_logits(batch.clean, patches[batch.key], all_weights)
        for totals, logits in zip(sums, circuits, strict=True):
            out = batch.output_logits(logits)
            totals["kl_div"] += float(kl_divergence(out, full).sum())
            totals["mse"] += float(mean_squared_error(out, full, batch).sum())
            if "correct_percent" in totals:
                totals["correct_percent"] += float(correct_percent(out, batch).sum())
            if "logit_diff_percent" in totals:
                pct = logit_difference_percent(out, full, batch)
                totals["logit_diff_percent"] += float(pct.sum())
        n_examples += batch.size
    return [{k: v / n_examples for k, v in totals.items()} for totals in sums]


def _measure_names(batch: PromptBatch) -> list[str]:
    names = ["kl_div", "mse"]
    if not batch.is_regression:
        names.append("correct_percent")
        if batch.wrong_answers.shape[-1] > 0:
            names.append("logit_diff_percent")
    return names
