"""Which nodes of the trained model implement which nodes of the tracr model.

A *node* is a graph source other than ``Resid Start``: an attention head ``A{layer}.{head}``
or an MLP ``MLP {layer}`` (names as in :mod:`harness.engine.graph`). tracr head ``h`` of
layer ``L`` is aligned with trained head ``h`` of layer ``L``, tracr ``MLP L`` with trained
``MLP L`` (InterpBench's alignment). The aligned (circuit) nodes are those of the tracr
ground truth that interchange can constrain: the nodes of its ``resample`` circuit (a node
that only matters when zeroed computes a constant, which no interchange changes). Every
other node of the trained model is outside the circuit and is trained to be unused.

A node's activation is read and written at one hook: a head's ``hook_z`` slice (its
output before ``W_O``), an MLP's ``hook_mlp_out``.

Example:
    >>> alignment = Alignment.from_edges(
    ...     ["Resid Start->A0.0.Q", "A0.0->MLP 0", "MLP 0->Resid End"], n_layers=2, n_heads=4)
    >>> alignment.circuit, len(alignment.outside)
    (('A0.0', 'MLP 0'), 8)
    >>> node_hook("A1.3"), node_hook("MLP 0")
    (('blocks.1.attn.hook_z', 3), ('blocks.0.hook_mlp_out', None))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.engine.graph import RESID_END, RESID_START

_HEAD = re.compile(r"^A(\d+)\.(\d+)(?:\.[QKV])?$")
_MLP = re.compile(r"^MLP (\d+)$")


def node_of(endpoint: str) -> str | None:
    """The node an edge endpoint belongs to (``A0.1.Q`` -> ``A0.1``), ``None`` for the
    residual stream's ends; a ValueError for a name that is no node."""
    if endpoint in (RESID_START, RESID_END):
        return None
    head = _HEAD.match(endpoint)
    if head:
        return f"A{head[1]}.{head[2]}"
    if _MLP.match(endpoint):
        return endpoint
    raise ValueError(f"{endpoint!r} is not a node of the edge graph")


def node_hook(node: str) -> tuple[str, int | None]:
    """The hook whose activation is ``node``, and its head index (``None`` for an MLP)."""
    head = _HEAD.match(node)
    if head:
        return f"blocks.{head[1]}.attn.hook_z", int(head[2])
    mlp = _MLP.match(node)
    if mlp:
        return f"blocks.{mlp[1]}.hook_mlp_out", None
    raise ValueError(f"{node!r} is not a head or an MLP")


def node_order(node: str) -> tuple[int, int]:
    """Forward order: by layer, heads before the MLP."""
    layer, head = node_hook(node)
    return int(layer.split(".")[1]), 10**9 if head is None else head


def all_nodes(n_layers: int, n_heads: int) -> tuple[str, ...]:
    """Every head and MLP of a model, in forward order."""
    return tuple(
        node
        for layer in range(n_layers)
        for node in (*(f"A{layer}.{h}" for h in range(n_heads)), f"MLP {layer}")
    )


@dataclass(frozen=True)
class Alignment:
    """The circuit's nodes (the same names in the tracr and the trained model) and the
    trained model's nodes outside it.

    Attributes:
        circuit: Aligned nodes, in forward order.
        outside: The trained model's other nodes, in forward order.
    """

    circuit: tuple[str, ...]
    outside: tuple[str, ...]

    @classmethod
    def from_edges(cls, edges: Iterable[str], n_layers: int, n_heads: int) -> Alignment:
        """The alignment whose circuit is the nodes of ``edges`` (a tracr ground truth),
        in a trained model of ``n_layers`` x ``n_heads``."""
        found = set()
        for edge in edges:
            src, dest = edge.split("->")
            found.update(n for n in (node_of(src), node_of(dest)) if n is not None)
        nodes = all_nodes(n_layers, n_heads)
        missing = sorted(found - set(nodes))
        if missing:
            raise ValueError(f"nodes {missing} do not exist in a {n_layers}x{n_heads} model")
        circuit = tuple(sorted(found, key=node_order))
        return cls(circuit, tuple(n for n in nodes if n not in found))
