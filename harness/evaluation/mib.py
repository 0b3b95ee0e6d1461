"""MIB's circuit metrics (Mueller et al. 2025): faithfulness over circuit sizes, CPR and CMD.

The faithfulness of a circuit ``C`` is

    f(C) = (m(C) − m(∅)) / (m(M) − m(∅))

where ``m`` is the task's metric averaged over the test examples, ``M`` the full model
(no edge ablated) and ``∅`` the empty circuit (every edge ablated). The circuits are the
top ``int(p · n_edges)`` edges of a ranking, for MIB's ten fractions
``p ∈ {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}`` (0.1 % … 100 %; the
count is truncated, as MIB truncates it). Both areas are trapezoids over those ten points
on a *linear* axis of the fraction itself (MIB's default, ``log_scale=False``), from 0.001
to 1, so an everywhere-faithful curve has area 0.999:

- **CPR** (circuit performance ratio) = area under ``f``, edges ranked by their *signed*
  score (higher = more important); higher is better.
- **CMD** (circuit-model distance) = area under ``|1 − f|``, edges ranked by *absolute*
  score; lower is better.

Ties keep the graph's edge order (a stable sort), as MIB's stable ``sorted`` does. MIB
also prunes edges left dangling (no path from the input, or to the logits) before it
evaluates a circuit; we do not. Under resample ablation with separate Q/K/V inputs this
changes nothing: a node whose every input edge is ablated computes its ablated value
anyway, and an edge into a node with no path to the logits cannot move the output.

The metric ``m`` (see :func:`task_measure`): the logit difference (answers minus wrong
answers) where batches have wrong answers, else the answers' logit; for a numerical
output, minus the squared error to the answers (a logit difference does not exist there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from harness.engine.ablation import ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import answer_logit, logit_difference, mean_squared_error
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores

MIB_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""MIB's circuit sizes, as fractions of the graph's edges."""

SIGNED = "signed"
ABSOLUTE = "absolute"


def mib_sizes(n_edges: int) -> list[int]:
    """The number of edges at each of MIB's sizes: ``int(p · n_edges)``.

    Example:
        >>> mib_sizes(77)
        [0, 0, 0, 0, 1, 3, 7, 15, 38, 77]
    """
    return [int(p * n_edges) for p in MIB_FRACTIONS]


def trapezoid_area(values: Sequence[float], xs: Sequence[float] = MIB_FRACTIONS) -> float:
    """The trapezoid-rule area of ``values`` over ``xs`` (MIB's fractions by default).

    Example:
        >>> round(trapezoid_area([1.0] * 10), 12)
        0.999
        >>> round(trapezoid_area([0.0] * 9 + [1.0]), 12)  # only the 100 % point
        0.25
    """
    if len(values) != len(xs):
        raise ValueError(f"{len(values)} values for {len(xs)} points")
    return sum((xs[i + 1] - xs[i]) * (values[i] + values[i + 1]) / 2 for i in range(len(xs) - 1))


def task_measure(batch: PromptBatch) -> str:
    """The name of the metric ``m`` MIB's faithfulness uses on this batch's task.

    Example:
        >>> import torch
        >>> b = PromptBatch.create("b", torch.zeros(1, 2, dtype=torch.long),
        ...     torch.zeros(1, 2, dtype=torch.long), torch.tensor([1]), torch.tensor([0]))
        >>> task_measure(b)
        'logit_diff'
    """
    if batch.is_regression:
        return "neg_mse"
    return "logit_diff" if batch.wrong_answers.shape[-1] > 0 else "answer_logit"


def measure_values(measure: str, logits: Tensor, batch: PromptBatch) -> Tensor:
    """Per-example values ``[batch]`` of a metric named by :func:`task_measure` (higher =
    the behaviour is there); ``logits`` are ``[batch, n_out, vocab]``."""
    if measure == "logit_diff":
        return logit_difference(logits, batch)
    if measure == "answer_logit":
        return answer_logit(logits, batch)
    if measure == "neg_mse":
        return -mean_squared_error(logits, logits, batch)
    raise ValueError(f"unknown MIB measure {measure!r}")


@dataclass(frozen=True)
class MibCurve:
    """Faithfulness at MIB's sizes for one ranking, and its area.

    Attributes:
        ranking: ``"signed"`` (CPR) or ``"absolute"`` (CMD).
        n_edges: Edges in the circuit at each size.
        faithfulness: ``f`` at each size.
        area: CPR (area under ``f``) for the signed ranking, CMD (area under ``|1 − f|``)
            for the absolute one.
    """

    ranking: str
    n_edges: tuple[int, ...]
    faithfulness: tuple[float, ...]
    area: float


@dataclass(frozen=True)
class MibResult:
    """CPR and CMD of one edge ranking.

    Attributes:
        cpr: Area under ``f`` (signed ranking); higher is better.
        cmd: Area under ``|1 − f|`` (absolute ranking); lower is better.
        cpr_curve, cmd_curve: The curves behind them.
        measure: The metric ``m`` (``logit_diff``, ``answer_logit`` or ``neg_mse``).
        full, empty: ``m`` of the full model and of the empty circuit.
        ablation: What the ablated edges carried.
    """

    cpr: float
    cmd: float
    cpr_curve: MibCurve
    cmd_curve: MibCurve
    measure: str
    full: float
    empty: float
    ablation: str

    def as_record(self) -> dict:
        """A JSON-ready summary that names both rankings.

        Example:
            >>> c = MibCurve("signed", (0, 1), (0.0, 1.0), 0.5)
            >>> r = MibResult(0.5, 0.2, c, c, "logit_diff", 1.0, 0.0, "resample").as_record()
            >>> r["cpr"], r["cpr_ranking"], r["cmd_ranking"]
            (0.5, 'signed', 'absolute')
        """
        return {
            "cpr": self.cpr,
            "cpr_ranking": SIGNED,
            "cmd": self.cmd,
            "cmd_ranking": ABSOLUTE,
            "measure": self.measure,
            "ablation": self.ablation,
            "fractions": list(MIB_FRACTIONS),
            "cpr_faithfulness": list(self.cpr_curve.faithfulness),
            "cmd_faithfulness": list(self.cmd_curve.faithfulness),
        }


def ranked_indices(scores: Tensor, ranking: str) -> Tensor:
    """Edge indices by decreasing signed (or absolute) score; ties in graph order.

    Example:
        >>> import torch
        >>> ranked_indices(torch.tensor([1.0, -3.0, 2.0]), "signed").tolist()
        [2, 0, 1]
        >>> ranked_indices(torch.tensor([1.0, -3.0, 2.0]), "absolute").tolist()
        [1, 2, 0]
    """
    if ranking not in (SIGNED, ABSOLUTE):
        raise ValueError(f"ranking {ranking!r} is not 'signed' or 'absolute'")
    keys = scores.abs() if ranking == ABSOLUTE else scores
    return torch.argsort(keys, descending=True, stable=True)


@torch.no_grad()
def mib_metrics(
    patchable: PatchableModel,
    batches: Sequence[PromptBatch],
    scores: PruneScores,
    ablation: str = "resample",
) -> MibResult:
    """CPR and CMD of ``scores`` on ``batches`` (see the module docstring).

    ``f`` is NaN at every size (and so are CPR and CMD) when the full model and the empty
    circuit have the same metric: the ratio is then undefined.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> from harness.algorithms import eap_prune_scores
        >>> planted = planted_circuit()
        >>> result = mib_metrics(planted.patchable, planted.batches,
        ...                      eap_prune_scores(planted.patchable, planted.batches))
        >>> result.cmd_curve.faithfulness[-1], result.measure
        (1.0, 'logit_diff')
    """
    if len(scores) != patchable.n_edges:
        raise ValueError(f"{len(scores)} scores for a graph of {patchable.n_edges} edges")
    n = patchable.n_edges
    sizes = mib_sizes(n)
    weights = [torch.zeros(n), torch.ones(n)]  # the full model, the empty circuit
    for ranking in (SIGNED, ABSOLUTE):
        order = ranked_indices(scores.scores, ranking)
        for k in sizes:
            w = torch.ones(n)  # 1 ablates an edge
            w[order[:k]] = 0.0
            weights.append(w)
    values, measure = _measure_at(patchable, batches, weights, ablation)
    full, empty = values[0], values[1]
    span = full - empty
    faith = [(v - empty) / span if span != 0 else float("nan") for v in values[2:]]
    signed, absolute = faith[: len(sizes)], faith[len(sizes) :]
    cpr = trapezoid_area(signed)
    cmd = trapezoid_area([abs(1 - f) for f in absolute])
    return MibResult(
        cpr,
        cmd,
        MibCurve(SIGNED, tuple(sizes), tuple(signed), cpr),
        MibCurve(ABSOLUTE, tuple(sizes), tuple(absolute), cmd),
        measure,
        full,
        empty,
        ablation,
    )


def _measure_at(
    patchable: PatchableModel,
    batches: Sequence[PromptBatch],
    all_weights: list[Tensor],
    ablation: str,
) -> tuple[list[float], str]:
    """The mean metric over every example of ``batches`` for each ``[n_edges]`` weight
    vector (1 ablates an edge)."""
    batches = [b.to(patchable.device) for b in batches]
    if not batches:
        raise ValueError("MIB's metrics need at least one batch")
    measure = task_measure(batches[0])
    patches = ablation_activations(patchable, batches, ablation)
    stacked = torch.stack(all_weights).to(patchable.device, patchable.dtype)  # [n_w, n_edges]
    totals = [0.0] * len(all_weights)
    n_examples = 0
    for batch in batches:
        circuits = patchable.circuit_logits(batch.clean, patches[batch.key], stacked)
        for i, logits in enumerate(circuits):
            out = batch.output_logits(logits)  # [batch, n_out, vocab]
            totals[i] += float(measure_values(measure, out, batch).double().sum())
        n_examples += batch.size
    return [t / n_examples for t in totals], measure
