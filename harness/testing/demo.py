"""The demo behind ``make run``: SP finds a planted circuit, printed as a ranking."""

from __future__ import annotations

import time
from typing import TextIO

from harness.algorithms import subnetwork_probing_prune_scores
from harness.engine.masks import INIT_LOGIT
from harness.testing.planted import planted_circuit

DEMO_MODES = ("corrupt-run", "tree", "restore-clean")


def run_demo(out: TextIO, epochs: int = 20, mode: str = "corrupt-run", seed: int = 0) -> bool:
    """Train SP on the planted-circuit model and print its top-ranked edges.

    ``mode`` is one of SP's modes (:data:`harness.algorithms.subnetwork_probing.SP_MODES`);
    ``corrupt-run`` is SP with the reference's defaults. Tree mode starts from the full
    circuit (``init_val = −log 5``): from the reference's start, nearly every edge
    ablated, the clamped hard-concrete samples leave it almost no gradient.

    Returns whether every planted edge ranks above every other edge.

    Example:
        >>> import io
        >>> run_demo(io.StringIO())
        True
    """
    if mode not in DEMO_MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(DEMO_MODES)}")
    settings = {
        "corrupt-run": {},
        "tree": {"tree_optimisation": True, "init_val": -INIT_LOGIT},
        "restore-clean": {"restore_clean": True},
    }[mode]

    planted = planted_circuit(seed=seed)
    start = time.perf_counter()
    scores = subnetwork_probing_prune_scores(
        planted.patchable,
        planted.batches,
        epochs=epochs,
        seed=seed,
        **settings,
        progress=False,
    )
    seconds = time.perf_counter() - start
    ranked = scores.ranked()
    n = len(planted.edges)
    print(
        f"Subnetwork Probing on a planted circuit: {planted.patchable.n_edges} edges, "
        f"{n} planted; mode {mode}, {epochs} epochs in {seconds:.1f} s",
        file=out,
    )
    print(f"{'rank':>4}  {'score':>7}  {'planted':<7}  edge", file=out)
    for rank, (name, score) in enumerate(ranked[: n + 4], start=1):
        mark = "yes" if name in planted.edges else ""
        print(f"{rank:>4}  {score:7.3f}  {mark:<7}  {name}", file=out)
    planted_first = set(scores.top(n)) == set(planted.edges)
    verdict = (
        "every planted edge ranks above every other edge"
        if planted_first
        else ("some planted edge ranks below an unplanted one")
    )
    print(f"Result: {verdict}.", file=out)
    return planted_first
