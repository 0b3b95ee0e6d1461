"""ACDC, Automatic Circuit DisCovery (Conmy et al. 2023), over the edges of a model's graph.

One ACDC run at threshold τ starts from the full model on the clean prompts and walks the
graph from the output backwards: destinations in reverse forward order (``Resid End``
first), and each destination's incoming edges in reverse source order. Each edge is
tentatively ablated (it carries its ablation value instead of its live value); it stays
ablated if the metric grows by less than τ over the current circuit's metric, else it is
restored. A destination whose node no longer has any surviving outgoing edge cannot
influence the output, so its incoming edges are ablated without being evaluated.

A sweep over several thresholds shares work exactly: runs whose thresholds made the same
decisions so far are in the same state, so their next evaluation is done once and they
part only where a decision differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from harness.algorithms.param_spec import Param, hyperparameters, number_list
from harness.engine.ablation import ABLATIONS, ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import kl_divergence, logit_difference, mean_squared_error
from harness.engine.graph import RESID_END, EdgeGraph, Node
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores

ACDC_METRICS = ("auto", "kl_div", "mse", "logit_diff")


def default_thresholds() -> tuple[float, ...]:
    """21 thresholds, log-spaced from 1e-5 to 1.

    Example:
        >>> t = default_thresholds()
        >>> len(t), t[0], t[-1]
        (21, 1e-05, 1.0)
    """
    return tuple(float(f"{t:.6g}") for t in (10 ** torch.linspace(-5, 0, 21)).tolist())


def circuit_metric(metric: str, logits: Tensor, reference_logits: Tensor, batch: PromptBatch):
    """Per-example value of an ACDC metric (lower is better), ``[batch]``.

    - ``kl_div``: KL from the full model's output.
    - ``mse``: :func:`harness.engine.faithfulness.mean_squared_error` (to the answers for
      numerical outputs, else to the full model's logits).
    - ``logit_diff``: minus the logit difference (answers minus wrong answers).

    Example:
        >>> x = torch.randn(3, 1, 4)
        >>> batch = PromptBatch.create("b", torch.zeros(3, 2, dtype=torch.long),
        ...     torch.zeros(3, 2, dtype=torch.long), torch.tensor([0, 1, 2]))
        >>> circuit_metric("kl_div", x, x, batch).abs().max().item() < 1e-6
        True
    """
    if metric == "kl_div":
        return kl_divergence(logits, reference_logits)
    if metric == "mse":
        return mean_squared_error(logits, reference_logits, batch)
    if metric == "logit_diff":
        return -logit_difference(logits, batch)
    raise ValueError(f"metric {metric!r} is not one of {', '.join(ACDC_METRICS)}")


@hyperparameters(
    thresholds=Param("thresholds", optional=True),
    ablation=Param("choice", choices=ABLATIONS),
    metric=Param("choice", choices=ACDC_METRICS),
)
def acdc_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch],
    official_edges: Iterable[str] | None = None,
    thresholds: Sequence[float] | Tensor | None = None,
    ablation: str = "resample",
    metric: str = "auto",
    *,
    seed: int = 0,
) -> PruneScores:
    """Score every edge by an ACDC sweep over ``thresholds``.

    Args:
        model: A ``HookedTransformer`` (wrapped with separate Q/K/V) or a
            :class:`~harness.engine.patching.PatchableModel`.
        dataloader: Re-iterable batches of :class:`~harness.engine.batches.PromptBatch`; the metric
            is the mean over all their examples.
        official_edges: Accepted and unused (a uniform interface for all algorithms).
        thresholds: Positive values of τ, one ACDC run each (default
            :func:`default_thresholds`).
        ablation: What removed edges carry: ``resample``, ``mean`` or ``zero``.
        metric: ``auto`` (default: ``kl_div`` for a distribution over tokens, ``mse`` for
            a numerical output), ``kl_div`` (refused for numerical outputs, where it is
            always 0), ``mse`` (numerical outputs, or the ACDC paper's ``l2``) or
            ``logit_diff``; see :func:`circuit_metric`.
        seed: Accepted and unused: ACDC is deterministic.

    Returns:
        :class:`~harness.engine.prune_scores.PruneScores` where an edge's score is the largest
        threshold whose run keeps it, 0 if no run keeps it (higher = survives stricter
        pruning). ``circuit`` is the circuit of the smallest threshold; ``sweep`` holds
        ``(τ, circuit)`` for every threshold, ascending; ``history`` has the lists
        ``threshold``, ``circuit_size``, ``metric`` (each run's final metric) and
        ``evaluations`` (forward passes over the data, shared ones counted once per run).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit(n_batches=1, batch_size=8)
        >>> scores = acdc_prune_scores(planted.patchable, planted.batches, thresholds=[1e-3])
        >>> scores.circuit == set(planted.edges)
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    taus = _ascending(thresholds)
    batches = [b.to(patchable.device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: ACDC needs at least one batch")
    if metric == "auto":
        metric = "mse" if all(b.is_regression for b in batches) else "kl_div"
    for b in batches:
        if metric == "logit_diff" and (b.is_regression or b.wrong_answers.shape[-1] == 0):
            raise ValueError(
                f"metric 'logit_diff' needs wrong answers, and batch {b.key!r} has none "
                "(use 'kl_div', or 'mse' for a numerical output)"
            )
        if metric == "kl_div" and b.is_regression:
            raise ValueError(
                f"metric 'kl_div' is always 0 on the numerical output of batch {b.key!r} "
                "(a softmax over one logit), so ACDC would remove every edge; use 'mse'"
            )

    evaluate = _Evaluator(patchable, batches, ablation, metric)
    graph = patchable.graph
    runs = _sweep(graph, taus, evaluate)
    by_threshold = {t: run for run in runs for t in run.members}
    names = graph.edge_names
    scores = torch.zeros(graph.n_edges, dtype=torch.float64)
    sweep, history = [], {"threshold": [], "circuit_size": [], "metric": [], "evaluations": []}
    for i, tau in enumerate(taus):
        run = by_threshold[i]
        kept = ~run.removed
        scores[kept] = tau  # ascending, so the largest surviving τ is written last
        circuit = frozenset(names[j] for j in torch.nonzero(kept).flatten().tolist())
        sweep.append((tau, circuit))
        history["threshold"].append(tau)
        history["circuit_size"].append(float(len(circuit)))
        history["metric"].append(run.metric)
        history["evaluations"].append(float(run.evaluations))
    return PruneScores(names, scores, history=history, circuit=sweep[0][1], sweep=tuple(sweep))


@dataclass
class _Run:
    """The state shared by the runs of the thresholds ``members`` (indices, ascending)."""

    members: list[int]
    removed: Tensor  # [n_edges] bool, True = ablated
    metric: float  # the current circuit's metric
    evaluations: int


class _Evaluator:
    """Mean metric over all examples of the circuit that ablates the given edges."""

    def __init__(self, patchable: PatchableModel, batches, ablation: str, metric: str) -> None:
        self.patchable = patchable
        self.batches = batches
        self.metric = metric
        with torch.no_grad():
            self.patches = ablation_activations(patchable, batches, ablation)
            self.full = [b.output_logits(patchable.model(b.clean)) for b in batches]
        self.n_examples = sum(b.size for b in batches)

    @torch.no_grad()
    def __call__(self, removed: Tensor) -> float:
        p = self.patchable
        weights = removed.to(device=p.device, dtype=p.dtype)[None]  # [1, n_edges]
        total = torch.zeros((), dtype=torch.float64, device=p.device)
        for batch, full in zip(self.batches, self.full, strict=True):
            out = batch.output_logits(
                p.forward_patched(batch.clean, self.patches[batch.key], weights)
            )
            total += circuit_metric(self.metric, out, full, batch).sum().double()
        return float(total) / self.n_examples


def _sweep(graph: EdgeGraph, taus: list[float], evaluate: _Evaluator) -> list[_Run]:
    """ACDC at every threshold of ``taus`` (ascending); runs in one state share evaluations."""
    start = torch.zeros(graph.n_edges, dtype=torch.bool)
    runs = [_Run(list(range(len(taus))), start, evaluate(start), 0)]
    outgoing = _outgoing_edges(graph)
    for dest, incoming in reversed(_incoming_edges(graph)):
        node = _node_of(dest)
        live, dead = [], []
        for run in runs:
            alive = node == RESID_END or not bool(run.removed[outgoing.get(node, [])].all())
            (live if alive else dead).append(run)
        for run in dead:  # no path to the output: ablate without a forward pass
            run.removed[incoming] = True
        for edge in reversed(incoming):
            next_live = []
            for run in live:
                trial = run.removed.clone()
                trial[edge] = True
                value = evaluate(trial)
                run.evaluations += 1
                # thresholds are ascending: those above the increase remove the edge
                cut = next(
                    (i for i, t in enumerate(run.members) if value - run.metric < taus[t]),
                    len(run.members),
                )
                kept, removed = run.members[:cut], run.members[cut:]
                if kept:
                    next_live.append(_Run(kept, run.removed, run.metric, run.evaluations))
                if removed:
                    next_live.append(_Run(removed, trial, value, run.evaluations))
            live = next_live
        runs = live + dead
    return runs


def _ascending(thresholds: Sequence[float] | Tensor | None) -> list[float]:
    """The distinct thresholds, ascending (checked by the declaration); the default
    sweep for ``None``."""
    if thresholds is None:
        return list(default_thresholds())
    return sorted({float(t) for t in number_list(thresholds)})


def _node_of(dest: Node) -> str:
    """The source node a destination feeds: ``A1.0`` for ``A1.0.Q``, ``MLP 1`` for ``MLP 1``."""
    return f"A{dest.layer}.{dest.head}" if dest.head is not None else dest.name


def _incoming_edges(graph: EdgeGraph) -> list[tuple[Node, list[int]]]:
    """Each destination with its incoming edge indices, both in forward order."""
    incoming: dict[str, list[int]] = {}
    for edge in graph.edges:
        incoming.setdefault(edge.dest.name, []).append(edge.index)
    return [(dest, incoming[dest.name]) for dest in graph.destinations]


def _outgoing_edges(graph: EdgeGraph) -> dict[str, list[int]]:
    outgoing: dict[str, list[int]] = {}
    for edge in graph.edges:
        outgoing.setdefault(edge.src.name, []).append(edge.index)
    return outgoing
