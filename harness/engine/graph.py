"""The factorized computational graph of a transformer_lens model.

Every node that writes to the residual stream is a *source*; every place that reads the
residual stream is a *destination*. Because all destinations read the residual stream
before any LayerNorm, a destination's input is the sum of its upstream sources' outputs
(plus constant biases), so each (source, destination) pair is an edge that can be
patched on its own.

Names follow the convention used across the field (auto-circuit, ACDC ports):

- sources: ``Resid Start``, ``A{layer}.{head}``, ``MLP {layer}``
- destinations: ``A{layer}.{head}.Q|K|V`` (or ``A{layer}.{head}`` without separate
  Q/K/V), ``MLP {layer}``, ``Resid End``
- edges: ``"SRC->DEST"``

Edges are ordered by destination group (in forward order), then by destination within
the group (head), then by source (in forward order). The edges of one destination group
therefore form one contiguous row-major ``[n_rows, n_upstream]`` block of the flat edge
vector, which is what lets :mod:`harness.engine.patching` slice one flat mask tensor into
per-hook views without copying.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RESID_START = "Resid Start"
RESID_END = "Resid End"


@dataclass(frozen=True)
class Node:
    """One source or destination of the graph.

    Attributes:
        name: The conventional name, e.g. ``"A1.3.Q"`` or ``"MLP 0"``.
        layer: The block the node sits in (``Resid End`` has ``n_layers``).
        head: The attention head, or ``None`` for non-head nodes.
        hook_name: The transformer_lens hook point whose activation is the node.
        qkv: ``"Q"``, ``"K"`` or ``"V"`` for separate attention inputs, else ``None``.
    """

    name: str
    layer: int
    head: int | None
    hook_name: str
    qkv: str | None = None


@dataclass(frozen=True)
class Edge:
    """A patchable edge from a source to a later destination.

    Attributes:
        src: The source node.
        dest: The destination node.
        index: The edge's position in :attr:`EdgeGraph.edges` (and in flat mask vectors).
    """

    src: Node
    dest: Node
    index: int

    @property
    def name(self) -> str:
        return f"{self.src.name}->{self.dest.name}"


@dataclass(frozen=True)
class SourceGroup:
    """The sources produced at one hook point (all heads of a layer, or one node).

    Attributes:
        hook_name: The hook point that produces them.
        nodes: The sources, in slot order.
        first_slot: The slot of ``nodes[0]`` in the stacked source dimension.
        has_head_dim: Whether the hook's activation is ``[batch, pos, head, d_model]``.
    """

    hook_name: str
    nodes: tuple[Node, ...]
    first_slot: int
    has_head_dim: bool

    @property
    def end_slot(self) -> int:
        return self.first_slot + len(self.nodes)


@dataclass(frozen=True)
class DestinationGroup:
    """The destinations read at one hook point, and the sources upstream of them.

    All destinations of a group read the same prefix of sources, ``slots [0, n_upstream)``.

    Attributes:
        hook_name: The hook point whose activation is the destinations' input.
        nodes: The destinations, one per head (or a single node), in row order.
        n_upstream: How many sources (a prefix of the source slots) feed each of them.
        edge_offset: The index of the group's first edge in the flat edge order.
        has_head_dim: Whether the hook's activation is ``[batch, pos, head, d_model]``.
    """

    hook_name: str
    nodes: tuple[Node, ...]
    n_upstream: int
    edge_offset: int
    has_head_dim: bool

    @property
    def n_edges(self) -> int:
        return len(self.nodes) * self.n_upstream


class EdgeGraph:
    """Sources, destinations and edges of a transformer_lens model.

    Build it with :meth:`from_config`. It holds names and indices only, no tensors.

    Example:
        >>> from transformer_lens import HookedTransformerConfig
        >>> cfg = HookedTransformerConfig(n_layers=4, n_heads=8, d_model=64, d_head=8,
        ...                               n_ctx=16, d_vocab=10, attn_only=True)
        >>> graph = EdgeGraph.from_config(cfg)
        >>> graph.n_edges
        1281
        >>> graph.edges[0].name
        'Resid Start->A0.0.Q'
    """

    def __init__(
        self,
        source_groups: tuple[SourceGroup, ...],
        destination_groups: tuple[DestinationGroup, ...],
        separate_qkv: bool,
    ) -> None:
        self.source_groups = source_groups
        self.destination_groups = destination_groups
        self.separate_qkv = separate_qkv
        self.sources: tuple[Node, ...] = tuple(n for g in source_groups for n in g.nodes)
        self.destinations: tuple[Node, ...] = tuple(n for g in destination_groups for n in g.nodes)
        edges = []
        for group in destination_groups:
            for dest in group.nodes:
                for src in self.sources[: group.n_upstream]:
                    edges.append(Edge(src=src, dest=dest, index=len(edges)))
        self.edges: tuple[Edge, ...] = tuple(edges)
        self._index = {edge.name: edge.index for edge in self.edges}

    @classmethod
    def from_config(cls, cfg: Any, separate_qkv: bool = True) -> EdgeGraph:
        """The graph of a model with the given ``HookedTransformerConfig``.

        Handles models with and without MLPs, parallel attention/MLP blocks (the MLP
        reads the block's input, so not the same block's heads) and grouped-query
        attention (keys and values have ``n_key_value_heads`` destinations).
        """
        n_layers, n_heads = cfg.n_layers, cfg.n_heads
        has_mlp = not cfg.attn_only
        parallel = bool(getattr(cfg, "parallel_attn_mlp", False))
        n_kv = getattr(cfg, "n_key_value_heads", None)
        ungrouped = bool(getattr(cfg, "ungroup_grouped_query_attention", False))
        n_kv_heads = n_kv if n_kv is not None and not ungrouped else n_heads

        source_groups = [SourceGroup("blocks.0.hook_resid_pre", (_resid_start(),), 0, False)]
        destination_groups: list[DestinationGroup] = []
        n_slots, n_edges = 1, 0

        def add_destinations(
            hook: str, nodes: tuple[Node, ...], n_upstream: int, heads: bool
        ) -> None:
            nonlocal n_edges
            group = DestinationGroup(hook, nodes, n_upstream, n_edges, heads)
            destination_groups.append(group)
            n_edges += group.n_edges

        for layer in range(n_layers):
            if separate_qkv:
                for kind, width in (("Q", n_heads), ("K", n_kv_heads), ("V", n_kv_heads)):
                    hook = f"blocks.{layer}.hook_{kind.lower()}_input"
                    nodes = tuple(
                        Node(f"A{layer}.{h}.{kind}", layer, h, hook, kind) for h in range(width)
                    )
                    add_destinations(hook, nodes, n_slots, True)
            else:
                hook = f"blocks.{layer}.hook_attn_in"
                nodes = tuple(Node(f"A{layer}.{h}", layer, h, hook) for h in range(n_heads))
                add_destinations(hook, nodes, n_slots, True)
            mlp_upstream = n_slots  # the MLP of a parallel block reads the block's input
            hook = f"blocks.{layer}.attn.hook_result"
            heads = tuple(Node(f"A{layer}.{h}", layer, h, hook) for h in range(n_heads))
            source_groups.append(SourceGroup(hook, heads, n_slots, True))
            n_slots += n_heads
            if has_mlp:
                hook = f"blocks.{layer}.hook_mlp_in"
                node = Node(f"MLP {layer}", layer, None, hook)
                add_destinations(hook, (node,), mlp_upstream if parallel else n_slots, False)
                hook = f"blocks.{layer}.hook_mlp_out"
                node = Node(f"MLP {layer}", layer, None, hook)
                source_groups.append(SourceGroup(hook, (node,), n_slots, False))
                n_slots += 1
        hook = f"blocks.{n_layers - 1}.hook_resid_post"
        add_destinations(hook, (Node(RESID_END, n_layers, None, hook),), n_slots, False)
        return cls(tuple(source_groups), tuple(destination_groups), separate_qkv)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def edge_names(self) -> tuple[str, ...]:
        return tuple(edge.name for edge in self.edges)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def edge(self, name: str) -> Edge:
        """The edge called ``name``; a ValueError with close matches if there is none."""
        try:
            return self.edges[self._index[name]]
        except KeyError:
            raise ValueError(self._unknown_edge_message(name)) from None

    def edge_indices(self, names: Iterable[str]) -> list[int]:
        """Flat indices of the named edges, in the order given."""
        return [self.edge(name).index for name in names]

    def _unknown_edge_message(self, name: str) -> str:
        same_but_case = [n for n in self._index if n.lower() == str(name).lower()]
        close = same_but_case or difflib.get_close_matches(str(name), self._index, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"edge {name!r} is not in this model's graph of {self.n_edges} edges "
            f"(names look like 'A0.1->A2.3.Q'){hint}"
        )


def _resid_start() -> Node:
    return Node(RESID_START, 0, None, "blocks.0.hook_resid_pre")
