"""Ground-truth circuits derived from a model's weights and data, never typed in.

The same code serves every compiled (tracr) model. It needs only the converted
``HookedTransformer``, the labels of its residual dimensions (for explanations), and the
task's data (clean and corrupt prompts, and the positions the task reads).

1. **Residual spaces** (:func:`residual_spaces`). Each source *writes* the residual
   dimensions where its output weight has a nonzero column: ``W_E`` and ``W_pos`` for
   ``Resid Start``, ``W_O[h]`` for a head, ``W_out`` for an MLP. Each destination *reads*
   the dimensions where its input weight has a nonzero row: ``W_Q[h]``, ``W_K[h]`` or
   ``W_V[h]`` for a head's Q, K or V input, ``W_in`` for an MLP, ``W_U`` for
   ``Resid End``. tracr builds every block on named residual subspaces and leaves
   exact zeros elsewhere, so this reading is exact (biases are constants, not edges).
   tracr's own declared block spaces agree on the writes; its declared input spaces
   also list dimensions the weights multiply by zero (``tokens:BOS`` in a value space),
   so they are not used (:mod:`harness.tasks.tracr.spaces`, checked in the tests).
2. **Structural circuit** (:func:`information_flow_edges`): ``SRC->DEST`` is in when
   ``SRC`` writes a dimension ``DEST`` reads. Every other edge carries exactly nothing,
   whatever the prompt: ablating it with anything cannot change the output.
3. **Pruning on the data** (:func:`prune_edges`). Edges are visited in reverse
   topological order (``Resid End``'s inputs first, then their sources' inputs...,
   within one destination the latest source first, as ACDC does); an edge is dropped
   when ablating it together with every edge already outside the circuit leaves the
   output at the task's output positions within ``tol`` of the unablated model on
   every prompt (float64). Each drop is checked jointly with all earlier ones, so the
   result is always sufficient, and the run is deterministic.

   - ``zero``: start from the structural circuit, ablate with zeros, and consider only
     the edges into a head's **Q or K** (the inputs that only decide *where* a head
     attends). Every value path (a head's V, an MLP's input, the output) that the
     weights connect is kept: it is the program's information flow. A Q/K read that
     does not move the attention's effect is routing, not information: a ``Select``
     with the ``TRUE`` predicate (the same pattern whatever the tokens), or tracr's
     default query term (read from the ``one`` dimension) that sends a query with no
     match to BOS, which moves the output by ~5e-7 when every query has a match.
     Value paths are not pruned because zero ablation can hit a value that happens to
     be right on the data although the path does carry the program's information
     (tracr-reverse: a zeroed length head reads as length 5, the length of every
     prompt; pruning value paths too would drop the length head, 8 edges, not the
     ACDC paper's 10).
   - ``resample``: start from ``zero``, ablate with the corrupt prompt's activations,
     consider every edge (edges outside ``zero`` are resample-ablated too; the start is
     checked to be faithful; where it is not, pruning starts from the structural
     circuit instead and says so). An edge whose source is the same on the clean and the
     corrupt prompt (the length when every prompt has full length, positions) cannot
     carry a difference and is dropped here.

Measured (default data, tol 1e-5): tracr-reverse 13 structural edges, ``zero`` 10 (drops
``Resid Start->A0.0.Q`` and ``.K``: a ``TRUE`` selector, and ``Resid Start->A3.0.Q``:
the BOS default term), ``resample`` 2; tracr-proportion 5, 5, 3. These equal the
official circuits (auto-circuit's resample sets, the ACDC paper's zero sets).

:func:`necessary_alone` then reports which circuit edges change the output when ablated
alone in the otherwise intact model (an edge can be needed in the circuit yet constant
on a dataset, or backed up by another path).

Example:
    >>> from harness.tasks.tracr.compile import load_compiled
    >>> compiled = load_compiled("proportion")
    >>> model = compiled.to_model()
    >>> structure = information_flow_edges(model, compiled.residual_labels)
    >>> structure["MLP 0->A1.0.V"]
    ('map_9',)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from harness.engine.graph import RESID_END, RESID_START, EdgeGraph
from harness.engine.patching import PatchableModel

DEFAULT_TOL = 1e-5  # max |change| of an output logit (float64): tracr's soft attention
# moves outputs by up to ~5e-7 (measured), an information-carrying change by > 1e-2.
ATTENTION_PATTERN_INPUTS = ("Q", "K")


@dataclass(frozen=True)
class ResidualSpaces:
    """Which residual dimensions each source writes and each destination reads.

    Attributes:
        labels: The name of every residual dimension.
        writes: Source name -> indices of the dimensions it writes.
        reads: Destination name -> indices of the dimensions it reads.
    """

    labels: tuple[str, ...]
    writes: dict[str, frozenset[int]]
    reads: dict[str, frozenset[int]]


def _nonzero(weight: Tensor, axis: int) -> frozenset[int]:
    """Indices along ``axis`` where ``weight`` has any nonzero entry."""
    other = [d for d in range(weight.ndim) if d != axis]
    mask = weight.detach().ne(0).any(dim=other) if other else weight.detach().ne(0)
    return frozenset(int(i) for i in torch.nonzero(mask).flatten().tolist())


def residual_spaces(model: Any, labels: Sequence[str] | None = None) -> ResidualSpaces:
    """The residual dimensions each node of ``model``'s graph writes or reads.

    Args:
        model: A ``HookedTransformer`` without normalisation (a converted tracr model).
        labels: One name per residual dimension (default ``"d0"``, ``"d1"``...).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> compiled = load_compiled("proportion")
        >>> spaces = residual_spaces(compiled.to_model(), compiled.residual_labels)
        >>> [spaces.labels[i] for i in sorted(spaces.reads["A1.0.V"])]
        ['map_9']
    """
    cfg = model.cfg
    if getattr(cfg, "normalization_type", None) is not None:
        raise ValueError("residual spaces are read from weights only without normalisation")
    names = tuple(labels) if labels is not None else tuple(f"d{i}" for i in range(cfg.d_model))
    if len(names) != cfg.d_model:
        raise ValueError(f"{len(names)} residual labels for d_model {cfg.d_model}")
    writes = {RESID_START: _nonzero(model.embed.W_E, 1) | _nonzero(model.pos_embed.W_pos, 1)}
    reads: dict[str, frozenset[int]] = {RESID_END: _nonzero(model.unembed.W_U, 0)}
    for layer, block in enumerate(model.blocks):
        for head in range(cfg.n_heads):
            writes[f"A{layer}.{head}"] = _nonzero(block.attn.W_O[head], 1)  # [d_head, d_model]
            qkv = {}
            for letter in "QKV":
                weight = getattr(block.attn, f"W_{letter}")  # [n_(kv_)heads, d_model, d_head]
                index = head * weight.shape[0] // cfg.n_heads  # its key/value head (GQA)
                qkv[letter] = _nonzero(weight[index], 0)
                reads[f"A{layer}.{head}.{letter}"] = qkv[letter]
            reads[f"A{layer}.{head}"] = qkv["Q"] | qkv["K"] | qkv["V"]  # combined input
        if not cfg.attn_only:
            writes[f"MLP {layer}"] = _nonzero(block.mlp.W_out, 1)  # [d_mlp, d_model]
            reads[f"MLP {layer}"] = _nonzero(block.mlp.W_in, 0)  # [d_model, d_mlp]
    return ResidualSpaces(names, writes, reads)


def information_flow_edges(
    model: Any, labels: Sequence[str] | None = None, separate_qkv: bool = True
) -> dict[str, tuple[str, ...]]:
    """The structural circuit: edge -> the residual labels its source writes and its
    destination reads (only edges with at least one), in the graph's edge order.

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> compiled = load_compiled("proportion")
        >>> flow = information_flow_edges(compiled.to_model(), compiled.residual_labels)
        >>> len(flow), flow["Resid Start->A1.0.Q"][-1], flow["A1.0->Resid End"]
        (5, 'one', ('frac_prevs_7',))
    """
    spaces = residual_spaces(model, labels)
    graph = EdgeGraph.from_config(model.cfg, separate_qkv=separate_qkv)
    flow = {}
    for edge in graph.edges:
        shared = spaces.writes[edge.src.name] & spaces.reads[edge.dest.name]
        if shared:
            flow[edge.name] = tuple(spaces.labels[i] for i in sorted(shared))
    return flow


def float64_model(model: Any) -> Any:
    """A float64 copy of a ``HookedTransformer`` (the original is left as it is).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> float64_model(load_compiled("proportion").to_model()).W_E.dtype
        torch.float64
    """
    from transformer_lens import HookedTransformer

    cfg = copy.deepcopy(model.cfg)
    cfg.dtype, cfg.init_weights = torch.float64, False
    clone = HookedTransformer(cfg, move_to_device=False)  # fresh: no wrapper's hooks
    state = {k: v.detach().to("cpu", torch.float64) for k, v in model.state_dict().items()}
    clone.load_state_dict(state, strict=False)
    return clone.eval()


@dataclass(frozen=True)
class DerivationData:
    """The prompts a derivation runs on.

    Attributes:
        clean: ``[n, pos]`` token ids.
        corrupt: ``[n, pos]`` token ids, row ``i`` the corrupt prompt of ``clean[i]``.
        output_positions: The positions the task reads.
    """

    clean: Tensor
    corrupt: Tensor
    output_positions: tuple[int, ...]

    @classmethod
    def from_batches(cls, batches: Iterable[Any]) -> DerivationData:
        """All clean and corrupt prompts of some ``PromptBatch``es (one length, one set of
        output positions)."""
        batches = list(batches)
        positions = {tuple(b.output_positions) for b in batches}
        if len(positions) != 1:
            raise ValueError(f"batches read different output positions: {sorted(positions)}")
        return cls(
            torch.cat([b.clean.cpu() for b in batches]),  # [n, pos]
            torch.cat([b.corrupt.cpu() for b in batches]),  # [n, pos]
            positions.pop(),
        )


class _Evaluator:
    """Output changes of one float64 model on one set of prompts, for a given ablation."""

    def __init__(self, patchable: PatchableModel, data: DerivationData, ablation: str) -> None:
        self.patchable = patchable
        self.clean = data.clean.to(patchable.device)  # [n, pos]
        pos = self.clean.shape[1]
        self.positions = [p % pos for p in data.output_positions]
        with torch.no_grad():
            self.reference = self._outputs(patchable.model(self.clean))  # [n, n_out, d_out]
            if ablation == "zero":
                n_src, d_model = patchable.graph.n_sources, patchable.model.cfg.d_model
                self.patch = torch.zeros(
                    1, n_src, pos, d_model, device=patchable.device, dtype=patchable.dtype
                )  # [1, n_src, pos, d_model]
            elif ablation == "resample":
                corrupt = data.corrupt.to(patchable.device)
                self.patch = patchable.source_activations(corrupt)  # [n, n_src, pos, d_model]
            else:
                raise ValueError(f"ablation must be 'zero' or 'resample', got {ablation!r}")

    def _outputs(self, logits: Tensor) -> Tensor:
        return logits[:, self.positions]  # [n, n_out, d_out]

    def change(self, ablated: Iterable[str]) -> float:
        """Max |output change| with the given edges ablated."""
        weights = self.patchable.edge_weights(list(ablated))  # [1, n_edges]
        with torch.no_grad():
            logits = self.patchable.forward_patched(self.clean, self.patch, weights)
        return float((self._outputs(logits) - self.reference).abs().max())


def prune_edges(
    patchable: PatchableModel,
    start: Iterable[str],
    data: DerivationData,
    ablation: str,
    tol: float = DEFAULT_TOL,
    only_into: Sequence[str] | None = None,
) -> frozenset[str]:
    """The edges of ``start`` still needed under ``ablation``, greedily (see the module).

    ``only_into``: consider dropping only edges into these kinds of destination
    (``"Q"``, ``"K"``, ``"V"``, ``"MLP"``, ``"Resid End"``); default: every edge.

    Raises ``ValueError`` if ``start`` itself is not faithful (ablating every edge outside
    it moves the output by more than ``tol``).

    Example:
        >>> import torch
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> model = float64_model(load_compiled("proportion").to_model())
        >>> patchable = PatchableModel.wrap(model)
        >>> clean = torch.tensor([[0, 3, 2, 3, 4, 5], [0, 2, 2, 3, 3, 3]])
        >>> data = DerivationData(clean, clean.flip(0), (1, 2, 3, 4, 5))
        >>> structure = information_flow_edges(model)
        >>> sorted(prune_edges(patchable, structure, data, "resample"))
        ['A1.0->Resid End', 'MLP 0->A1.0.V', 'Resid Start->MLP 0']
    """
    evaluator = _Evaluator(patchable, data, ablation)
    kept = set(start)
    outside = [e.name for e in patchable.edges if e.name not in kept]
    initial = evaluator.change(outside)
    if initial > tol:
        raise ValueError(
            f"the starting circuit is not faithful under {ablation} ablation: ablating the "
            f"{len(outside)} edges outside it moves the output by {initial:.3g} > {tol:g}"
        )
    for edge in reversed(patchable.edges):  # Resid End first, later sources first
        if edge.name not in kept or not _is_candidate(edge.dest, only_into):
            continue
        if evaluator.change([*outside, edge.name]) <= tol:
            kept.discard(edge.name)
            outside.append(edge.name)
    return frozenset(kept)


def _is_candidate(dest: Any, only_into: Sequence[str] | None) -> bool:
    if only_into is None:
        return True
    kind = dest.qkv or ("MLP" if dest.name.startswith("MLP") else dest.name)
    return kind in only_into


def necessary_alone(
    patchable: PatchableModel,
    circuit: Iterable[str],
    data: DerivationData,
    ablation: str,
    tol: float = DEFAULT_TOL,
) -> dict[str, float]:
    """Each circuit edge's output change when it alone is ablated; keep those ``> tol``
    to count the individually necessary edges.

    Example:
        >>> import torch
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> patchable = PatchableModel.wrap(float64_model(load_compiled("proportion").to_model()))
        >>> clean = torch.tensor([[0, 3, 2, 3, 4, 5], [0, 2, 2, 3, 3, 3]])
        >>> data = DerivationData(clean, clean.flip(0), (1, 2, 3, 4, 5))
        >>> changes = necessary_alone(patchable, ["Resid Start->A1.0.Q"], data, "resample")
        >>> changes["Resid Start->A1.0.Q"] <= DEFAULT_TOL
        True
    """
    evaluator = _Evaluator(patchable, data, ablation)
    order = {e.name: e.index for e in patchable.edges}
    return {edge: evaluator.change([edge]) for edge in sorted(circuit, key=order.__getitem__)}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (tiny models: 30-100x faster than
    several threads on a busy machine), then restore the thread count.

    Example:
        >>> with one_thread():
        ...     torch.get_num_threads()
        1
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class DerivedCircuits:
    """The ground truths of a model on some data.

    Attributes:
        structural: Edge -> the residual labels it carries (source writes, destination reads).
        zero: The circuit for zero ablation.
        resample: The circuit for resample ablation (a subset of ``zero`` unless
            ``resample_start`` is ``"structural"``).
        tol: The output tolerance the pruning used.
        resample_start: ``"zero"``, or ``"structural"`` where resample-ablating the
            edges outside ``zero`` moved the output (a Q/K read that zeros leave
            harmless but a corrupt prompt does not), so pruning started from there.
    """

    structural: dict[str, tuple[str, ...]]
    zero: frozenset[str]
    resample: frozenset[str]
    tol: float
    resample_start: str = "zero"


def derive_circuits(
    model: Any,
    data: DerivationData,
    labels: Sequence[str] | None = None,
    tol: float = DEFAULT_TOL,
    separate_qkv: bool = True,
) -> DerivedCircuits:
    """Derive ``zero`` and ``resample`` for ``model`` on ``data`` (runs a float64 copy).

    Example:
        >>> import torch
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> compiled = load_compiled("proportion")
        >>> clean = torch.tensor([[0, 3, 2, 3, 4, 5], [0, 2, 2, 3, 3, 3]])
        >>> data = DerivationData(clean, clean.flip(0), (1, 2, 3, 4, 5))
        >>> derived = derive_circuits(compiled.to_model(), data, compiled.residual_labels)
        >>> len(derived.structural), len(derived.zero), len(derived.resample)
        (5, 5, 3)
    """
    structural = information_flow_edges(model, labels, separate_qkv)
    patchable = PatchableModel.wrap(float64_model(model), separate_qkv=separate_qkv)
    with one_thread():
        zero = prune_edges(patchable, structural, data, "zero", tol, ATTENTION_PATTERN_INPUTS)
        start = "zero"
        try:
            resample = prune_edges(patchable, zero, data, "resample", tol)
        except ValueError:
            start = "structural"
            resample = prune_edges(patchable, structural, data, "resample", tol)
    return DerivedCircuits(structural, zero, resample, tol, start)
