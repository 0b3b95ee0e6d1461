"""PruneScores: a score for every edge, higher meaning more important."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class PruneScores:
    """Scores of every edge of a graph, in the graph's edge order.

    Attributes:
        edge_names: Edge names, in the graph's order.
        scores: ``[n_edges]`` float64 scores on the CPU.
        history: Per-step training curves, for algorithms that train (else empty).
        train_graph: A plotly figure of the training curves, when one was asked for.
        circuit: The algorithm's own circuit, for algorithms that end with one (SP: the
            edges whose deterministic mask puts them in the circuit), else ``None``.
        sweep: ``(threshold, circuit)`` of every run of a sweep, for algorithms that
            produce one circuit per threshold (ACDC), ascending; else empty.
        semantics: How the algorithm read its masks, for algorithms with several modes
            (SP: a key of ``harness.algorithms.subnetwork_probing.SP_MODES``), else ``None``.

    Example:
        >>> import torch
        >>> ps = PruneScores(("a->b", "c->d"), torch.tensor([0.5, 2.0]))
        >>> ps.as_dict()
        {'a->b': 0.5, 'c->d': 2.0}
        >>> ps.top(1)
        ['c->d']
    """

    edge_names: tuple[str, ...]
    scores: Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    train_graph: Any = None
    circuit: frozenset[str] | None = None
    sweep: tuple[tuple[float, frozenset[str]], ...] = ()
    semantics: str | None = None

    def __post_init__(self) -> None:
        scores = self.scores.detach().to("cpu", torch.float64).reshape(-1)
        if scores.shape[0] != len(self.edge_names):
            raise ValueError(f"{scores.shape[0]} scores for {len(self.edge_names)} edges")
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.edge_names)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.edge_names, self.scores.tolist(), strict=True))

    def ranked(self) -> list[tuple[str, float]]:
        """``(edge, score)`` by decreasing |score|; ties keep the graph's order."""
        order = torch.argsort(self.scores.abs(), descending=True, stable=True)
        return [(self.edge_names[i], float(self.scores[i])) for i in order.tolist()]

    def top(self, k: int) -> list[str]:
        """The ``k`` edges of largest |score|."""
        return [name for name, _ in self.ranked()[:k]]
