"""tracr's own residual spaces of each compiled block, to cross-check the weights.

:mod:`harness.tasks.tracr.derive` reads which residual dimensions each node reads and writes
from the converted weights (nonzero rows and columns). tracr also declares them: each
craft block has input and output spaces. The two agree on what blocks *write*; what a
block *reads* from the weights is a subset of its declared input space, because tracr
declares dimensions it multiplies by zero (``tokens:BOS`` in a query or value space,
values that can never match, categories a numerical ``Map`` sends to 0). The weights are
exact, so the derivation uses them; this module (which imports tracr and JAX) serves the
tests that check the subset relation.
"""

from __future__ import annotations

from typing import Any

from harness.tasks.tracr.program import BOS
from harness.tasks.tracr.programs import all_programs
from harness.tasks.tracr.rasp_graph import build_program


def _names(space: Any) -> frozenset[str]:
    """Residual labels of a tracr ``VectorSpaceWithBasis``, as in ``residual_labels``."""
    return frozenset(d.name if d.value is None else f"{d.name}:{d.value}" for d in space.basis)


def tracr_block_spaces(
    name: str,
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """``(reads, writes)``: graph node name -> the residual labels tracr declares for it.

    Compiles the program's craft model the way ``compile_rasp_to_model`` does (imports
    JAX) and places its blocks in layers the way tracr's assembler does: each block takes
    the next free half-layer of its kind (attention, then MLP, per layer).

    Example:
        >>> reads, writes = tracr_block_spaces("proportion")
        >>> sorted(writes["MLP 0"]), sorted(reads["A1.0.V"])
        (['map_9'], ['map_9', 'tokens:BOS'])
    """
    from tracr.compiler import (
        basis_inference,
        craft_graph_to_model,
        expr_to_craft_graph,
        rasp_to_graph,
    )
    from tracr.craft import bases, transformers
    from tracr.rasp import rasp

    program = all_programs()[name]
    extracted = rasp_to_graph.extract_rasp_graph(build_program(name))
    basis_inference.infer_bases(
        extracted.graph, extracted.sink, set(program.vocab), program.max_seq_len
    )
    expr_to_craft_graph.add_craft_components_to_rasp_graph(
        extracted.graph, bos_dir=bases.BasisDirection(rasp.tokens.label, BOS)
    )
    craft = craft_graph_to_model.craft_graph_to_model(extracted.graph, extracted.sources)
    half_layers = [(layer, kind) for layer in range(len(craft.blocks)) for kind in ("A", "M")]
    reads: dict[str, frozenset[str]] = {}
    writes: dict[str, frozenset[str]] = {}
    slot = 0
    for block in craft.blocks:
        kind = "M" if isinstance(block, transformers.MLP) else "A"
        while half_layers[slot][1] != kind:
            slot += 1
        layer = half_layers[slot][0]
        slot += 1
        if kind == "M":
            reads[f"MLP {layer}"] = _names(block.fst.input_space)
            writes[f"MLP {layer}"] = _names(block.snd.output_space)
            continue
        for head, attention in enumerate(block.heads()):
            node = f"A{layer}.{head}"
            reads[f"{node}.Q"] = _names(attention.w_qk.left_space)
            reads[f"{node}.K"] = _names(attention.w_qk.right_space)
            reads[f"{node}.V"] = _names(attention.w_ov.input_space)
            writes[node] = _names(attention.w_ov.output_space)
    return reads, writes
