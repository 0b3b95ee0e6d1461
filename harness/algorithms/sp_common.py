"""What Subnetwork Probing alone (:mod:`harness.algorithms.subnetwork_probing`) and
batched (:mod:`harness.algorithms.sp_batched`) share: SP's modes, and what each mode makes
of a batch before training, of the mask count during it and of the logits after it.

A mask of 1 always means "this edge is patched"; what the base run is, what an edge is
patched with and which masks form the circuit depend on the mode (:data:`SP_MODES`):

- ``tree``: the base run is the clean prompts and a mask of 1 ablates the edge; the
  circuit is the masks that are off; logits start at ``+init_val``.
- ``corrupt-run``: the base run is the corrupt prompts and a mask of 1 patches the edge
  with its ablation value; the circuit is the masks that are on; logits start at
  ``−init_val``.
- ``restore-clean``: the base run is the ablated run and a mask of 1 restores the edge's
  clean activation; the circuit is the masks that are on; logits start at ``−init_val``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from harness.engine.ablation import ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.masks import deterministic_masks
from harness.engine.patching import PatchableModel
from harness.engine.prune_scores import PruneScores

SP_MODES = {
    "tree": "clean run; a mask of 1 ablates the edge; the circuit is the edges kept",
    "corrupt-run": "corrupt run; a mask of 1 patches the edge with its ablation value; "
    "the circuit is the edges patched (the reference's code without tree optimisation)",
    "restore-clean": "ablated run; a mask of 1 restores the edge's clean activation; "
    "the circuit is the edges restored",
}
"""SP's three ways of reading a mask, by name (see the module docstring)."""


def sp_mode(tree_optimisation: bool, restore_clean: bool = False, ablation: str = "mean") -> str:
    """The name of the mode SP trains in (a key of :data:`SP_MODES`), refusing
    combinations that mean nothing.

    Example:
        >>> sp_mode(False), sp_mode(True), sp_mode(False, restore_clean=True)
        ('corrupt-run', 'tree', 'restore-clean')
    """
    if tree_optimisation:
        if restore_clean:
            raise ValueError(
                "restore_clean=True needs tree_optimisation=False (tree mode ablates edges "
                "of the clean run; there is nothing to restore)"
            )
        return "tree"
    if restore_clean:
        return "restore-clean"
    if ablation == "resample":
        raise ValueError(
            "ablation 'resample' without tree optimisation patches the corrupt run with its "
            "own activations, so every mask is a no-op: use ablation 'mean' or 'zero' (the "
            "reference uses 'mean'), restore_clean=True, or tree_optimisation=True"
        )
    return "corrupt-run"


def initial_logit(init_val: float, tree_optimisation: bool) -> float:
    """Every mask logit's starting value: ``+init_val`` in tree mode, ``−init_val``
    otherwise, as in the reference.

    Example:
        >>> initial_logit(1.5, True), initial_logit(1.5, False)
        (1.5, -1.5)
    """
    return float(init_val) if tree_optimisation else -float(init_val)


@dataclass(frozen=True)
class PreparedRun:
    """Everything one batch needs for a patched forward pass, computed once.

    Attributes:
        batch: The prompts.
        tokens: The base run's tokens.
        patch: What a mask of 1 moves each source toward.
        resid_start: The base run's embedding, where it is not the tokens' own.
        clean_logits: The full model's output on the clean prompts.
    """

    batch: PromptBatch
    tokens: Tensor  # [batch, pos]
    patch: Tensor  # [batch or 1, n_sources, pos, d_model]
    resid_start: Tensor | None  # [batch or 1, pos, d_model]
    clean_logits: Tensor  # [batch, n_out, vocab]


@torch.no_grad()
def prepare_runs(
    patchable: PatchableModel, batches: list[PromptBatch], ablation: str, mode: str
) -> list[PreparedRun]:
    """Each batch's :class:`PreparedRun` in ``mode`` with ``ablation`` values.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit(n_batches=1, batch_size=4)
        >>> run = prepare_runs(planted.patchable, planted.batches, "mean", "corrupt-run")[0]
        >>> run.tokens is run.batch.corrupt, run.resid_start is None
        (True, True)
    """
    if not batches:
        return []
    ablated = ablation_activations(patchable, batches, ablation)
    runs = []
    for batch in batches:
        clean_logits = batch.output_logits(patchable.model(batch.clean))
        if mode == "tree":
            run = PreparedRun(batch, batch.clean, ablated[batch.key], None, clean_logits)
        elif mode == "corrupt-run":
            run = PreparedRun(batch, batch.corrupt, ablated[batch.key], None, clean_logits)
        elif ablation == "resample":  # restore-clean: the corrupt run is the ablated run
            clean = patchable.source_activations(batch.clean)
            run = PreparedRun(batch, batch.corrupt, clean, None, clean_logits)
        else:  # restore-clean: the ablated embedding is the ablated run's start
            clean = patchable.source_activations(batch.clean)
            run = PreparedRun(batch, batch.clean, clean, ablated[batch.key][:, 0], clean_logits)
        runs.append(run)
    return runs


def size_term(
    count: Tensor, n_edges: int, tree_optimisation: bool, circuit_size: int | None
) -> Tensor:
    """SP's circuit-size term from a sampled count of masks on (any shape): the share of
    the edges in the circuit, or with ``circuit_size`` the excess over it, relative.

    Example:
        >>> size_term(torch.tensor(3.0), 10, True, None)
        tensor(0.7000)
        >>> size_term(torch.tensor([3.0, 6.0]), 10, False, 4)
        tensor([0.0000, 0.5000])
    """
    if tree_optimisation:
        count = n_edges - count
    if circuit_size is not None:
        return torch.relu(count - circuit_size) / circuit_size
    return count / n_edges


def final_scores(
    patchable: PatchableModel,
    final: Tensor,
    mask_fn: str | None,
    mode: str,
    history: dict[str, list[float]],
    figure: Any = None,
) -> PruneScores:
    """Scores from the final logits ``[n_edges]`` as the reference computes them (higher
    = more important), with the deterministic circuit, the history and the mode.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> patchable = planted_circuit(n_batches=1, batch_size=4).patchable
        >>> logits = torch.linspace(-1, 1, patchable.n_edges)
        >>> scores = final_scores(patchable, logits, "sigmoid", "corrupt-run", {})
        >>> float(scores.scores.min()), len(scores.circuit) == patchable.n_edges // 2
        (0.0, True)
    """
    tree = mode == "tree"
    extreme = (final.max() if tree else final.min()).abs()
    scores = extreme - final if tree else extreme + final
    on = deterministic_masks(mask_fn, final) > 0.5  # patched (tree: ablated)
    in_circuit = ~on if tree else on
    names = patchable.graph.edge_names
    circuit = frozenset(names[i] for i in torch.nonzero(in_circuit).flatten().tolist())
    return PruneScores(
        names, scores, history=history, train_graph=figure, circuit=circuit, semantics=mode
    )


def diverged(mean_loss: float, epoch: int, learning_rate: float) -> FloatingPointError:
    """The error that stops an SP training whose epoch loss is no longer finite.

    Example:
        >>> str(diverged(float("nan"), 3, 0.5)).split(" (")[0]
        'SP loss is nan at epoch 3'
    """
    return FloatingPointError(
        f"SP loss is {mean_loss} at epoch {epoch} (learning_rate {learning_rate} "
        "too high, or a faithfulness target undefined on this task?)"
    )
