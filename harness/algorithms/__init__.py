"""Circuit-discovery algorithms: pure functions ``(model, data, **hyperparameters) -> PruneScores``.

The registry maps a slug to a frozen :class:`AlgorithmSpec`; unknown slugs get a
did-you-mean error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.algorithms.acdc import acdc_prune_scores
from harness.algorithms.eap_ig import eap_ig_prune_scores
from harness.algorithms.edge_attribution import eap_prune_scores
from harness.algorithms.edge_pruning import edge_pruning_prune_scores
from harness.algorithms.oracle import oracle_prune_scores
from harness.algorithms.params import PARAMETERS, Param, check_values
from harness.algorithms.random_scores import random_prune_scores
from harness.algorithms.subnetwork_probing import subnetwork_probing_prune_scores
from harness.engine.prune_scores import PruneScores
from harness.interop.mib_files import import_prune_scores
from harness.util.did_you_mean import did_you_mean


@dataclass(frozen=True)
class AlgorithmSpec:
    """One registered algorithm.

    Attributes:
        slug: Its short name on the command line and in configs.
        label: The name printed in tables and figures.
        function: ``(model, dataloader, official_edges, **hyperparameters) -> PruneScores``.
    """

    slug: str
    label: str
    function: Callable[..., PruneScores]

    @property
    def parameters(self) -> dict[str, Param]:
        """Each hyperparameter as its function declares it: type, range, default, whether
        a study may search it (see :mod:`harness.algorithms.param_spec`).

        Example:
            >>> dropout_p = get_algorithm("sp").parameters["dropout_p"]
            >>> dropout_p.describe(), dropout_p.default
            ('a finite number in [0, 1)', 0.0)
        """
        return PARAMETERS[self.slug]

    def check(self, params: Mapping[str, Any]) -> None:
        """A one-line ValueError for the first value ``params`` gives outside its range."""
        check_values(self.slug, params)


ALGORITHMS: dict[str, AlgorithmSpec] = {
    spec.slug: spec
    for spec in (
        AlgorithmSpec("sp", "Subnetwork Probing", subnetwork_probing_prune_scores),
        AlgorithmSpec("acdc", "ACDC", acdc_prune_scores),
        AlgorithmSpec("eap", "Edge Attribution Patching", eap_prune_scores),
        AlgorithmSpec("eap-ig", "EAP with integrated gradients", eap_ig_prune_scores),
        AlgorithmSpec("edge-pruning", "Edge Pruning", edge_pruning_prune_scores),
        AlgorithmSpec("random", "Random", random_prune_scores),
        AlgorithmSpec("oracle", "Oracle (ground truth)", oracle_prune_scores),
        AlgorithmSpec("import", "Imported (MIB circuit file)", import_prune_scores),
    )
}


def get_algorithm(slug: str) -> AlgorithmSpec:
    """The algorithm registered as ``slug``.

    Example:
        >>> get_algorithm("sp").label
        'Subnetwork Probing'
    """
    try:
        return ALGORITHMS[slug]
    except KeyError:
        hint = did_you_mean(slug, ALGORITHMS)
        raise ValueError(
            f"unknown algorithm {slug!r} (known: {', '.join(ALGORITHMS)}){hint}"
        ) from None


__all__ = [
    "ALGORITHMS",
    "AlgorithmSpec",
    "acdc_prune_scores",
    "eap_ig_prune_scores",
    "eap_prune_scores",
    "edge_pruning_prune_scores",
    "get_algorithm",
    "import_prune_scores",
    "oracle_prune_scores",
    "random_prune_scores",
    "subnetwork_probing_prune_scores",
]
