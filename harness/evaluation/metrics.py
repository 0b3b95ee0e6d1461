"""Scores against ground truth: ROC curves, AUC, and circuit faithfulness.

Two ROC conventions, which give different numbers for the same method, so every curve
carries the name of its convention:

- ``score-trapezoid``: one ranking of all edges by |score|. Each distinct threshold
  selects the edges at or above it (tied scores enter together) and gives one
  (FPR, TPR) point against the official edges; AUC by the trapezoid rule from (0, 0)
  to (1, 1).
- ``sweep-pessimistic`` (the ACDC paper's): each run of a sweep yields one circuit and
  one point; points dominated by another (no larger FPR and no smaller TPR) are dropped,
  and the AUC is the pessimistic staircase Σ (1 − FPR_i)(TPR_i − TPR_{i−1}) over the
  points sorted by FPR, with (0, 0) and (1, 1) added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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

SCORE_TRAPEZOID = "score-trapezoid"
SWEEP_PESSIMISTIC = "sweep-pessimistic"


@dataclass(frozen=True)
class RocCurve:
    """Points of a ROC curve against one ground truth, and its AUC.

    Attributes:
        fpr: False-positive rates, ascending, from 0 to 1.
        tpr: True-positive rates of the same points.
        n_selected: Edges in the circuit at each point (``-1`` for the added end points
            of a sweep).
        auc: The area under the curve, in the curve's convention.
        convention: ``"score-trapezoid"`` or ``"sweep-pessimistic"``.
    """

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    n_selected: tuple[int, ...]
    auc: float
    convention: str


def score_roc(
    scores: PruneScores | Mapping[str, float],
    official_edges: Iterable[str],
) -> RocCurve:
    """The score-based ROC of a ranking of every edge (trapezoid AUC).

    Example:
        >>> curve = score_roc({"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}, {"a", "c"})
        >>> curve.fpr, curve.tpr, curve.auc
        ((0.0, 0.0, 0.5, 0.5, 1.0), (0.0, 0.5, 0.5, 1.0, 1.0), 0.75)
    """
    values = scores.as_dict() if isinstance(scores, PruneScores) else dict(scores)
    positives = _checked_positives(official_edges, values)
    n_pos, n_neg = len(positives), len(values) - len(positives)
    order = sorted(values, key=lambda e: -abs(values[e]))
    fpr, tpr, selected = [0.0], [0.0], [0]
    true_pos = false_pos = 0
    for i, edge in enumerate(order):
        if edge in positives:
            true_pos += 1
        else:
            false_pos += 1
        last_of_tie = i + 1 == len(order) or abs(values[order[i + 1]]) != abs(values[edge])
        if last_of_tie:
            fpr.append(false_pos / n_neg)
            tpr.append(true_pos / n_pos)
            selected.append(i + 1)
    auc = sum((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2 for i in range(1, len(fpr)))
    return RocCurve(tuple(fpr), tuple(tpr), tuple(selected), auc, SCORE_TRAPEZOID)


def sweep_roc(
    circuits: Sequence[Iterable[str]],
    official_edges: Iterable[str],
    all_edges: Iterable[str],
) -> RocCurve:
    """The sweep-based ROC (one circuit per run) with the pessimistic staircase AUC.

    Example:
        >>> edges = ["a", "b", "c", "d"]
        >>> sweep_roc([{"a"}, {"a", "b", "c"}], {"a", "c"}, edges).auc
        0.75
        >>> sweep_roc([{"a", "b"}], {"a", "c"}, edges).auc  # one point (0.5, 0.5)
        0.25
    """
    universe = set(all_edges)
    positives = _checked_positives(official_edges, universe)
    n_pos, n_neg = len(positives), len(universe) - len(positives)
    points = set()
    for circuit in circuits:
        chosen = set(circuit)
        unknown = chosen - universe
        if unknown:
            raise ValueError(f"circuit edge {sorted(unknown)[0]!r} is not in the graph")
        tp = len(chosen & positives)
        points.add(((len(chosen) - tp) / n_neg, tp / n_pos, len(chosen)))
    if not points:
        raise ValueError("an empty sweep has no ROC curve: give at least one circuit")
    kept = [
        p
        for p in points
        if not any(q[0] <= p[0] and q[1] >= p[1] and q[:2] != p[:2] for q in points)
    ]
    kept = sorted({p[:2]: p for p in kept}.values())
    curve = [(0.0, 0.0, -1), *kept, (1.0, 1.0, -1)]
    auc = sum((1 - curve[i][0]) * (curve[i][1] - curve[i - 1][1]) for i in range(1, len(curve)))
    return RocCurve(
        tuple(p[0] for p in curve),
        tuple(p[1] for p in curve),
        tuple(p[2] for p in curve),
        auc,
        SWEEP_PESSIMISTIC,
    )


def _checked_positives(official_edges: Iterable[str], universe: Iterable[str]) -> set[str]:
    universe = set(universe)
    positives = set(official_edges)
    missing = positives - universe
    if missing:
        raise ValueError(f"official edge {sorted(missing)[0]!r} is not among the scored edges")
    if not positives or positives == universe:
        raise ValueError(
            "ROC needs both official and non-official edges "
            f"({len(positives)} of {len(universe)} edges are official)"
        )
    return positives


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


def bootstrap_interval(values: list[float], samples: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean.

    Example:
        >>> bootstrap_interval([1.0, 1.0, 1.0], 1000)
        (1.0, 1.0)
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(samples, len(data)), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
