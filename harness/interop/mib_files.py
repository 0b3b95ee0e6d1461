"""MIB's circuit files: our edge scores out to MIB's JSON, and MIB's JSON back in as scores.

An MIB circuit file (the format of the MIB circuit track and its EAP-IG code) is one JSON
object ``{"cfg": {...}, "nodes": {...}, "edges": {...}}``:

- ``cfg``: ``n_layers``, ``n_heads``, ``parallel_attn_mlp``, ``d_model`` of the model.
- ``nodes``: ``{name: {"in_graph": bool}}`` for ``input``, ``a{layer}.h{head}``,
  ``m{layer}`` and ``logits``.
- ``edges``: ``{name: {"score": float, "in_graph": bool}}``, where a name is
  ``SRC->DEST`` and an attention destination carries its input: ``input->a0.h0<q>``,
  ``m1->a2.h0<v>``, ``a3.h0->logits``, ``a0.h1->m0``.

The name map to our graph (:mod:`harness.engine.graph`) is one to one: ``Resid Start`` is
``input``, ``A{l}.{h}`` is ``a{l}.h{h}``, ``MLP {l}`` is ``m{l}``, ``Resid End`` is
``logits``, and ``A{l}.{h}.Q|K|V`` as a destination is ``a{l}.h{h}<q|k|v>``. GPT-2 small
has the same 32,491 edges in both.

Written files mark ``in_graph`` for the algorithm's own circuit where it has one (SP,
ACDC, Edge Pruning), else for no edge (MIB's evaluation ranks edges by score anyway); a
node is in the graph when an edge in the graph touches it. Read files give the scores of
the ``import`` algorithm and, where some edge is ``in_graph``, its circuit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.engine.graph import RESID_END, RESID_START, EdgeGraph
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores
from harness.util.user_files import MiB, read_user_file

MAX_MIB_FILE_BYTES = 256 * MiB
"""An MIB circuit file larger than this is refused unread: GPT-2 small's 32,491 edges
take about 3 MiB, so this leaves room for models some 50 times larger."""

_QKV_SUFFIX = re.compile(r"^(?P<node>.+)<(?P<qkv>[qkv])>$")
_HEAD = re.compile(r"^a(?P<layer>\d+)\.h(?P<head>\d+)$")
_MLP = re.compile(r"^m(?P<layer>\d+)$")
_OUR_HEAD = re.compile(r"^A(?P<layer>\d+)\.(?P<head>\d+)(?:\.(?P<qkv>[QKV]))?$")
_OUR_MLP = re.compile(r"^MLP (?P<layer>\d+)$")


def mib_node_name(node: str) -> str:
    """MIB's name of one of our nodes (a destination's Q/K/V becomes a ``<q>`` suffix).

    Example:
        >>> [mib_node_name(n) for n in ("Resid Start", "A3.0", "A2.0.V", "MLP 1", "Resid End")]
        ['input', 'a3.h0', 'a2.h0<v>', 'm1', 'logits']
    """
    if node == RESID_START:
        return "input"
    if node == RESID_END:
        return "logits"
    match = _OUR_HEAD.match(node)
    if match:
        name = f"a{match['layer']}.h{match['head']}"
        return f"{name}<{match['qkv'].lower()}>" if match["qkv"] else name
    match = _OUR_MLP.match(node)
    if match:
        return f"m{match['layer']}"
    raise ValueError(f"node {node!r} has no MIB name")


def harness_node_name(node: str) -> str:
    """Our name of an MIB node (the inverse of :func:`mib_node_name`).

    Example:
        >>> harness_node_name("a2.h0<v>"), harness_node_name("m1"), harness_node_name("input")
        ('A2.0.V', 'MLP 1', 'Resid Start')
    """
    if node == "input":
        return RESID_START
    if node == "logits":
        return RESID_END
    qkv = None
    match = _QKV_SUFFIX.match(node)
    if match:
        node, qkv = match["node"], match["qkv"].upper()
    head = _HEAD.match(node)
    if head:
        name = f"A{int(head['layer'])}.{int(head['head'])}"
        return f"{name}.{qkv}" if qkv else name
    mlp = _MLP.match(node)
    if mlp and qkv is None:
        return f"MLP {int(mlp['layer'])}"
    raise ValueError(
        f"{node if qkv is None else f'{node}<{qkv.lower()}>'!r} is not an MIB node name "
        "(names look like 'input', 'a0.h1', 'a0.h1<q>', 'm3', 'logits')"
    )


def mib_edge_name(edge: str) -> str:
    """MIB's name of one of our edges.

    Example:
        >>> mib_edge_name("Resid Start->A0.0.Q"), mib_edge_name("A3.0->Resid End")
        ('input->a0.h0<q>', 'a3.h0->logits')
    """
    src, _, dest = edge.partition("->")
    return f"{mib_node_name(src)}->{mib_node_name(dest)}"


def harness_edge_name(edge: str) -> str:
    """Our name of an MIB edge.

    Example:
        >>> harness_edge_name("m1->a2.h0<v>")
        'MLP 1->A2.0.V'
    """
    src, sep, dest = str(edge).partition("->")
    if not sep:
        raise ValueError(f"{edge!r} is not an MIB edge name (they look like 'm1->a2.h0<v>')")
    return f"{harness_node_name(src)}->{harness_node_name(dest)}"


def mib_circuit(
    patchable: PatchableModel, scores: PruneScores, circuit: Iterable[str] | None = None
) -> dict[str, Any]:
    """The MIB circuit object of ``scores`` (and of ``circuit``, or the scores' own).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> ps = PruneScores(planted.patchable.graph.edge_names, torch.zeros(262))
        >>> data = mib_circuit(planted.patchable, ps, planted.edges)
        >>> len(data["edges"]), data["edges"]["a2.h0->logits"]["in_graph"]
        (262, True)
    """
    graph = patchable.graph
    if not graph.separate_qkv:
        raise ValueError("MIB's circuit files need separate Q/K/V inputs (separate_qkv=True)")
    if tuple(scores.edge_names) != graph.edge_names:
        raise ValueError("the scores are not of this model's graph")
    chosen = set(circuit if circuit is not None else (scores.circuit or ()))
    cfg = patchable.model.cfg
    edges, touched = {}, set()
    for edge, score in zip(graph.edges, scores.scores.tolist(), strict=True):
        in_graph = edge.name in chosen
        edges[mib_edge_name(edge.name)] = {"score": score, "in_graph": in_graph}
        if in_graph:
            touched.add(mib_node_name(edge.src.name))
            touched.add(_QKV_SUFFIX.sub(r"\g<node>", mib_node_name(edge.dest.name)))
    nodes = {name: {"in_graph": name in touched} for name in _mib_nodes(graph)}
    return {
        "cfg": {
            "n_layers": cfg.n_layers,
            "n_heads": cfg.n_heads,
            "parallel_attn_mlp": bool(getattr(cfg, "parallel_attn_mlp", False)),
            "d_model": cfg.d_model,
        },
        "nodes": nodes,
        "edges": edges,
    }


def _mib_nodes(graph: EdgeGraph) -> list[str]:
    names = [mib_node_name(n.name) for n in graph.sources]
    return [*names, "logits"]


def write_mib_circuit(
    path: Path | str,
    patchable: PatchableModel,
    scores: PruneScores,
    circuit: Iterable[str] | None = None,
) -> None:
    """Write :func:`mib_circuit` to ``path`` as JSON."""
    data = mib_circuit(patchable, scores, circuit)
    Path(path).write_text(json.dumps(data))


def load_mib_file(path: Path | str) -> dict[str, Any]:
    """Read an MIB circuit file and check its shape (not yet against a graph); a
    one-line ValueError naming the file and the problem.

    Example:
        >>> import tempfile
        >>> bad = Path(tempfile.mkdtemp()) / "c.json"
        >>> _ = bad.write_text('{"cfg": {}, "nodes": {}}')
        >>> load_mib_file(bad)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: .../c.json: not an MIB circuit file: it has no 'edges'
    """
    path = Path(path)
    try:
        text = read_user_file(path, "MIB circuit file", MAX_MIB_FILE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ValueError(f"cannot read MIB circuit file {str(path)!r}: {reason}") from None
    data = _parse_json(text, path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an MIB circuit file: a JSON object is expected")
    for key in ("cfg", "nodes", "edges"):
        if key not in data:
            raise ValueError(f"{path}: not an MIB circuit file: it has no {key!r}")
        if not isinstance(data[key], dict):
            raise ValueError(f"{path}: {key!r} must be a JSON object")
    for name, entry in data["edges"].items():
        score = entry.get("score") if isinstance(entry, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"{path}: edge {name!r} has no numeric 'score'")
        if not math.isfinite(_as_float(score)):
            if isinstance(score, float):
                raise ValueError(f"{path}: edge {name!r} has a non-finite score {score}")
            digits = len(str(score))
            raise ValueError(
                f"{path}: edge {name!r} has a score out of range (an integer of {digits} digits)"
            )
        if not isinstance(entry.get("in_graph", False), bool):
            raise ValueError(f"{path}: edge {name!r} has an 'in_graph' that is not true/false")
    return data


def _parse_json(text: str, path: Path) -> Any:
    """The JSON ``text`` of an MIB file, or one ValueError line: not JSON, nested too
    deeply (RecursionError), or an integer too long to read.

    Example:
        >>> _parse_json("[" * 100_000 + "]" * 100_000, Path("c.json"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: c.json: not an MIB circuit file: JSON nested too deeply (... levels or more)
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        depth = len(text) - len(text.lstrip("[{ \n\t"))
        raise ValueError(
            f"{path}: not an MIB circuit file: JSON nested too deeply ({depth} levels or more)"
        ) from None
    except ValueError as error:  # an integer of more than sys.get_int_max_str_digits()
        raise ValueError(f"{path}: not an MIB circuit file: {error}") from None


def _as_float(number: int | float) -> float:
    """``number`` as a float, infinite where it is too large for one.

    Example:
        >>> _as_float(10**400), _as_float(3)
        (inf, 3.0)
    """
    try:
        return float(number)
    except OverflowError:
        return math.inf


def scores_from_mib(
    data: Mapping[str, Any], patchable: PatchableModel, where: str = "MIB circuit"
) -> PruneScores:
    """Scores (and the ``in_graph`` circuit) of a loaded MIB circuit, in our graph's order.

    Every edge of the graph must be in the file and every edge of the file in the graph.
    """
    graph, cfg = patchable.graph, patchable.model.cfg
    theirs = (data["cfg"].get("n_layers"), data["cfg"].get("n_heads"))
    if theirs != (cfg.n_layers, cfg.n_heads):
        raise ValueError(
            f"{where}: circuit of a model with {theirs[0]} layers and {theirs[1]} heads; this "
            f"task's model has {cfg.n_layers} and {cfg.n_heads}"
        )
    values = torch.full((graph.n_edges,), math.nan, dtype=torch.float64)
    circuit = set()
    for name, entry in data["edges"].items():
        try:
            ours = harness_edge_name(name)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if ours not in graph:
            raise ValueError(
                f"{where}: edge {name!r} ({ours}) is not in this model's graph of "
                f"{graph.n_edges} edges"
            )
        index = graph.edge(ours).index
        values[index] = float(entry["score"])
        if entry.get("in_graph", False):
            circuit.add(ours)
    missing = torch.isnan(values).nonzero().flatten().tolist()
    if missing:
        first = mib_edge_name(graph.edges[missing[0]].name)
        raise ValueError(
            f"{where}: has {graph.n_edges - len(missing)} of the graph's {graph.n_edges} "
            f"edges; missing {len(missing)}, e.g. {first!r}"
        )
    return PruneScores(graph.edge_names, values, circuit=frozenset(circuit) or None)


def import_prune_scores(
    model: Any,
    dataloader: Iterable[Any] | None = None,
    official_edges: Iterable[str] | None = None,
    path: str | None = None,
) -> PruneScores:
    """The ``import`` algorithm: the scores of an MIB circuit file (nothing is run).

    Args:
        model: A ``HookedTransformer`` or :class:`~harness.engine.patching.PatchableModel`.
        dataloader, official_edges: Accepted and unused (the uniform interface).
        path: The MIB circuit JSON file.

    Example:
        >>> import tempfile
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> names = planted.patchable.graph.edge_names
        >>> ps = PruneScores(names, torch.arange(262.0))
        >>> out = Path(tempfile.mkdtemp()) / "c.json"
        >>> write_mib_circuit(out, planted.patchable, ps)
        >>> torch.equal(import_prune_scores(planted.patchable, path=str(out)).scores, ps.scores)
        True
    """
    if not path:
        raise ValueError("the import algorithm needs path=FILE (an MIB circuit JSON file)")
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    return scores_from_mib(load_mib_file(path), patchable, str(path))
