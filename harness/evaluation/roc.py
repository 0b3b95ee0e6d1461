"""Edge rankings scored against a ground truth: ROC curves and their AUC.

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
