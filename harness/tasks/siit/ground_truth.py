"""The ground truths of a trained model, and their check by ablation.

SIIT constrains nodes, not edges: it makes the circuit's nodes compute the tracr model's
values and every other node unused. What that enforces, and so what a trained model's
ground truth can honestly claim, is the circuit's *node-induced* edges: every edge from
``Resid Start`` or a circuit node into a circuit node (its Q, K and V inputs each counted)
or ``Resid End`` (``siit``, the default). The tracr model's own ``resample`` edges, mapped
over by name (``tracr-resample``), are a finer claim the training does not enforce (a
trained head may read the token through its V input where tracr's did not): a second
ground truth, reported with its own check.

A ground truth is checked by ablation: every edge outside it takes its value from a
source prompt (resample ablation) and the model's answers are compared with the program's
(:func:`ablation_accuracy`).

Example:
    >>> from harness.engine.graph import EdgeGraph
    >>> from transformer_lens import HookedTransformerConfig
    >>> cfg = HookedTransformerConfig(n_layers=2, d_model=8, n_ctx=4, d_head=2, n_heads=4,
    ...                               d_vocab=5, act_fn="gelu", normalization_type=None)
    >>> sorted(node_induced_edges(EdgeGraph.from_config(cfg), ["A0.0", "MLP 0"]))[:3]
    ['A0.0->MLP 0', 'A0.0->Resid End', 'MLP 0->Resid End']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.engine.graph import RESID_END, RESID_START, EdgeGraph
from harness.engine.patching import PatchableModel
from harness.tasks.siit.alignment import node_of
from harness.tasks.siit.data import SiitData
from harness.tasks.siit.metrics import correct_share, source_order

NODE_INDUCED = "siit"
MAPPED_RESAMPLE = "tracr-resample"


def node_induced_edges(graph: EdgeGraph, nodes: Iterable[str]) -> frozenset[str]:
    """Every edge of ``graph`` between ``Resid Start``, ``nodes`` and ``Resid End``."""
    nodes = set(nodes)
    kept = set()
    for edge in graph.edges:
        src = node_of(edge.src.name)
        dest = node_of(edge.dest.name)
        src_in = edge.src.name == RESID_START or src in nodes
        dest_in = edge.dest.name == RESID_END or dest in nodes
        if src_in and dest_in:
            kept.add(edge.name)
    return frozenset(kept)


def trained_ground_truths(
    graph: EdgeGraph, circuit: Iterable[str], tracr_resample: Iterable[str]
) -> dict[str, frozenset[str]]:
    """``siit`` (node-induced, the default) and ``tracr-resample`` (mapped by name)."""
    mapped = frozenset(tracr_resample)
    missing = sorted(e for e in mapped if e not in graph)
    if missing:
        raise ValueError(f"tracr edges {missing[:3]} are not edges of the trained model")
    return {NODE_INDUCED: node_induced_edges(graph, circuit), MAPPED_RESAMPLE: mapped}


def ablation_accuracy(model: Any, data: SiitData, kept: Iterable[str]) -> float:
    """The share of right answers on the test prompts when every edge outside ``kept``
    takes its value from another test prompt (the sources :func:`siit_metrics` uses)."""
    patchable = PatchableModel.wrap(model)
    try:
        kept = set(kept)
        outside = [e.name for e in patchable.edges if e.name not in kept]
        base = data.test_tokens  # [n, pos]
        logits = patchable.run_patched(
            base, base[source_order(base.shape[0])], outside
        )  # [n, pos, d_vocab_out]
        return correct_share(logits[:, list(data.positions)], data.test_labels, data.numerical)
    finally:
        patchable.unwrap()
