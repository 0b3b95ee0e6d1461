"""Official circuits of IOI, Greater-Than and Docstring, derived from their class-level rules.

The papers describe circuits as classes of heads (and MLPs) and the connections between
classes, with the Q, K or V input each connection enters. The two libraries that turned
those descriptions into edge sets did it differently, so each circuit has two variants:

- ``autocircuit`` (Miller et al. 2024): only the listed connections, with the MLPs inside
  each connection's layer span bridged in (IOI);
- ``acdc`` (Conmy et al. 2023): the full graph without the non-circuit heads, the heads'
  inputs rebuilt from the connections (IOI). For Greater-Than and Docstring both
  libraries give the same set.

Edges are named as in :mod:`harness.engine.graph` (``"A9.9->Resid End"``), at component level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from harness.engine.graph import RESID_END, RESID_START

INPUT, OUTPUT = "INPUT", "OUTPUT"

# Wang et al. (2023), class keys and heads as in ACDC's IOI_CIRCUIT.
IOI_HEADS: dict[str, tuple[tuple[int, int], ...]] = {
    "name mover": ((9, 9), (10, 0), (9, 6)),
    "backup name mover": (
        (10, 10), (10, 6), (10, 2), (10, 1), (11, 2), (9, 7), (9, 0), (11, 9),
    ),
    "negative": ((10, 7), (11, 10)),
    "s2 inhibition": ((7, 3), (7, 9), (8, 6), (8, 10)),
    "induction": ((5, 5), (5, 8), (5, 9), (6, 9)),
    "duplicate token": ((0, 1), (0, 10), (3, 0)),
    "previous token": ((2, 2), (4, 11)),
}  # fmt: skip

# (sender class, receiver class, the receiver inputs the connection enters)
IOI_CONNECTIONS: tuple[tuple[str, str, str], ...] = (
    (INPUT, "previous token", "QKV"),
    (INPUT, "duplicate token", "QKV"),
    (INPUT, "s2 inhibition", "Q"),
    (INPUT, "negative", "KV"),
    (INPUT, "name mover", "KV"),
    (INPUT, "backup name mover", "KV"),
    ("previous token", "induction", "KV"),
    ("induction", "s2 inhibition", "KV"),
    ("duplicate token", "s2 inhibition", "KV"),
    ("s2 inhibition", "negative", "Q"),
    ("s2 inhibition", "name mover", "Q"),
    ("s2 inhibition", "backup name mover", "Q"),
    ("negative", OUTPUT, ""),
    ("name mover", OUTPUT, ""),
    ("backup name mover", OUTPUT, ""),
)

# Hanna et al. (2023): head and MLP groups of the Greater-Than circuit.
GREATERTHAN_GROUPS: dict[str, tuple[str, ...]] = {
    "attn 0.1": ("A0.1",),
    "attn 0.3 0.5": ("A0.3", "A0.5"),
    "mid attns": ("A5.5", "A6.1", "A6.9", "A7.10", "A8.11", "A9.1"),
    "early mlps": ("MLP 0", "MLP 1", "MLP 2", "MLP 3"),
    "late mlps": ("MLP 8", "MLP 9", "MLP 10", "MLP 11"),
}
GREATERTHAN_CONNECTIONS: tuple[tuple[str, str], ...] = (
    (INPUT, "attn 0.1"),
    (INPUT, "attn 0.3 0.5"),
    (INPUT, "early mlps"),
    ("attn 0.1", "early mlps"),
    ("attn 0.1", "mid attns"),
    ("attn 0.3 0.5", "mid attns"),
    ("early mlps", "early mlps"),
    ("early mlps", "mid attns"),
    ("mid attns", "late mlps"),
    ("late mlps", "late mlps"),
    ("mid attns", OUTPUT),
    ("late mlps", OUTPUT),
)

# Heimersheim & Janiak (2023): each head's Q/K/V senders, and the heads writing the output.
DOCSTRING_INPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "A0.5": {"V": (RESID_START,)},
    "A1.2": {"Q": (RESID_START, "A0.5"), "K": (RESID_START, "A0.5")},
    "A1.4": {"V": (RESID_START, "A0.5")},
    "A2.0": {"Q": (RESID_START, "A0.5"), "K": (RESID_START, "A0.5"), "V": ("A1.4",)},
    "A3.0": {"Q": ("A1.4",), "K": ("A2.0", "A1.2"), "V": (RESID_START, "A0.5")},
    "A3.6": {"Q": ("A1.4",), "K": ("A2.0", "A1.2"), "V": (RESID_START, "A0.5")},
}
DOCSTRING_OUTPUT_HEADS = ("A3.0", "A3.6")

GPT2_SMALL_SHAPE = (12, 12)  # (n_layers, n_heads)


def _layer_order(node: str) -> tuple[int, int]:
    """Where a node sits in the forward pass: sources write at, destinations read at.

    Heads write (and their Q/K/V read) at ``(layer, 0)``, MLPs at ``(layer, 1)``;
    an edge is legal iff the source's key is smaller than the destination's.
    """
    if node == RESID_START:
        return (-1, 0)
    if node == RESID_END:
        return (10**6, 0)
    if node.startswith("MLP "):
        return (int(node[4:]), 1)
    return (int(node[1:].split(".")[0]), 0)


def is_forward_edge(src: str, dest: str) -> bool:
    """Whether ``src -> dest`` is an edge of the graph (the source comes strictly earlier).

    Example:
        >>> is_forward_edge("A3.1", "MLP 3"), is_forward_edge("MLP 3", "A3.1.Q")
        (True, False)
    """
    return _layer_order(src) < _layer_order(dest)


def _pairs(sources: Iterable[str], destinations: Iterable[str]) -> set[str]:
    destinations = list(destinations)
    return {f"{s}->{d}" for s in sources for d in destinations if is_forward_edge(s, d)}


def _head(layer: int, head: int) -> str:
    return f"A{layer}.{head}"


def _qkv_inputs(heads: Iterable[tuple[int, int]], letters: str) -> list[str]:
    return [f"{_head(*h)}.{letter}" for h in heads for letter in letters]


def ioi_edges(variant: str = "autocircuit") -> frozenset[str]:
    """The IOI circuit of Wang et al. in GPT-2 small (739 edges, or 963 for ``"acdc"``).

    ``autocircuit``: each connection links the sender class (``Resid Start`` for the
    input) to the entered Q/K/V of the receiver class; the MLPs of layers
    ``[first sender layer, last receiver layer)`` join both ends of the connection, so
    they feed each other, the entered inputs, and read the senders. For connections to
    the output the span's upper bound is 0 (auto-circuit's component mode reads a token
    index there), so no MLP is bridged to ``Resid End``.

    ``acdc``: every edge among ``Resid Start``, the MLPs, the 26 circuit heads and
    ``Resid End``, except the heads' inputs from ``Resid Start`` and from heads and the
    heads' outputs to ``Resid End``; then the connections, with ``Resid Start`` and all
    MLPs as the input and ``Resid End`` plus all MLPs as the output.

    Example:
        >>> len(ioi_edges()), len(ioi_edges("acdc")), ioi_edges() < ioi_edges("acdc")
        (739, 963, True)
    """
    n_layers, _ = GPT2_SMALL_SHAPE
    mlps = [f"MLP {layer}" for layer in range(n_layers)]
    edges: set[str] = set()
    if variant == "acdc":
        heads = [_head(*h) for cls in IOI_HEADS.values() for h in cls]
        head_inputs = _qkv_inputs([h for cls in IOI_HEADS.values() for h in cls], "QKV")
        edges |= _pairs([RESID_START, *mlps], [*mlps, RESID_END])
        edges |= _pairs(heads, mlps) | _pairs(mlps, head_inputs)
    elif variant != "autocircuit":
        raise ValueError(f"unknown IOI variant {variant!r} (known: autocircuit, acdc)")
    for sender, receiver, letters in IOI_CONNECTIONS:
        sources = [RESID_START] if sender == INPUT else [_head(*h) for h in IOI_HEADS[sender]]
        if receiver == OUTPUT:
            destinations = [RESID_END]
        else:
            destinations = _qkv_inputs(IOI_HEADS[receiver], letters)
        if variant == "acdc":
            if sender == INPUT:
                sources += mlps
            if receiver == OUTPUT:
                destinations += mlps
        else:
            first = 0 if sender == INPUT else min(layer for layer, _ in IOI_HEADS[sender])
            last = 0 if receiver == OUTPUT else max(layer for layer, _ in IOI_HEADS[receiver])
            bridge = [f"MLP {m}" for m in range(first, last)]
            sources, destinations = sources + bridge, destinations + bridge
        edges |= _pairs(sources, destinations)
    return frozenset(edges)


def greaterthan_edges(variant: str = "autocircuit") -> frozenset[str]:
    """The Greater-Than circuit of Hanna et al. in GPT-2 small (235 edges, both variants).

    Each connection links every member of the sender group to every input (Q, K and V of
    heads, the input of MLPs) of the receiver group, where the edge is legal. Because the
    paper leaves the mid heads' queries unpatched, ACDC (and auto-circuit after it) also
    keep every MLP -> MLP edge below the last mid-head layer and every earlier MLP -> the
    query of each mid head.

    Example:
        >>> len(greaterthan_edges()), greaterthan_edges() == greaterthan_edges("acdc")
        (235, True)
    """
    if variant not in ("autocircuit", "acdc"):
        raise ValueError(f"unknown Greater-Than variant {variant!r} (known: autocircuit, acdc)")
    groups = GREATERTHAN_GROUPS

    def inputs(group: str) -> list[str]:
        if group == OUTPUT:
            return [RESID_END]
        return [n if n.startswith("MLP") else f"{n}.{q}" for n in groups[group] for q in "QKV"]

    edges: set[str] = set()
    for sender, receiver in GREATERTHAN_CONNECTIONS:
        sources = [RESID_START] if sender == INPUT else list(groups[sender])
        edges |= _pairs(sources, inputs(receiver))
    mid_layers = [int(h[1:].split(".")[0]) for h in groups["mid attns"]]
    below_mid = [f"MLP {m}" for m in range(max(mid_layers))]
    edges |= _pairs(below_mid, below_mid)
    edges |= _pairs(below_mid, [f"{h}.Q" for h in groups["mid attns"]])
    return frozenset(edges)


def docstring_edges(variant: str = "autocircuit") -> frozenset[str]:
    """The Docstring circuit of Heimersheim & Janiak in attn-only-4l (24 edges, both variants).

    Example:
        >>> sorted(docstring_edges())[:2]
        ['A0.5->A1.2.K', 'A0.5->A1.2.Q']
    """
    if variant not in ("autocircuit", "acdc"):
        raise ValueError(f"unknown Docstring variant {variant!r} (known: autocircuit, acdc)")
    edges = {f"{h}->{RESID_END}" for h in DOCSTRING_OUTPUT_HEADS}
    for head, senders_by_input in DOCSTRING_INPUTS.items():
        for letter, senders in senders_by_input.items():
            edges |= _pairs(senders, [f"{head}.{letter}"])
    return frozenset(edges)


OFFICIAL_CIRCUITS: Mapping[str, Callable[[str], frozenset[str]]] = {
    "ioi": ioi_edges,
    "greaterthan": greaterthan_edges,
    "docstring": docstring_edges,
}
VARIANTS = ("autocircuit", "acdc")


def official_circuits(task: str) -> dict[str, frozenset[str]]:
    """Both variants of a task's official circuit, ``autocircuit`` (the default) first.

    Example:
        >>> {k: len(v) for k, v in official_circuits("docstring").items()}
        {'autocircuit': 24, 'acdc': 24}
    """
    derive = OFFICIAL_CIRCUITS[task]
    return {variant: derive(variant) for variant in VARIANTS}
