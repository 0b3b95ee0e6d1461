"""Subnetwork Probing (Cao et al. 2021) over the edges of a model's graph.

SP learns one mask logit per edge with Adam. Each step samples a mask per example
(hard concrete by default), runs one patched forward pass, and minimises

    loss = faithfulness term + regularize_lambda × (size term [± avoid penalty])

With default arguments it computes what the reference (auto-circuit 1.0.1) computes.
A mask of 1 always means "this edge is patched"; what the base run is, what an edge is
patched with and which masks form the circuit depend on the mode (:data:`SP_MODES`):

- ``tree``: the base run is the clean prompts and a mask of 1 ablates the edge; the
  circuit is the masks that are off; logits start at ``+init_val``.
- ``corrupt-run``: the base run is the corrupt prompts and a mask of 1 patches the edge
  with its ablation value; the circuit is the masks that are on; logits start at
  ``−init_val``.
- ``restore-clean``: the base run is the ablated run and a mask of 1 restores the edge's
  clean activation; the circuit is the masks that are on; logits start at ``−init_val``.

``tree`` is ``tree_optimisation=True``. ``corrupt-run`` is the reference's code with
``tree_optimisation=False`` (the default). ``restore-clean`` (``restore_clean=True``) is
what the reference's docstring describes for that case, and finds the edges whose clean
value restores the output. The ablation value is, as in the reference by default, the
token-wise mean of the corrupt prompts' activations (``ablation="mean"``); ``resample``
and ``zero`` are options. With a positive ``init_val`` every mode starts from a nearly
empty circuit; a negative one starts from a nearly full circuit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.engine.ablation import ablation_activations, check_ablation
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import check_faithfulness_target, faithfulness_loss
from harness.engine.masks import (
    INIT_LOGIT,
    check_mask_fn,
    deterministic_masks,
    drop_masks,
    mask_probability,
    sample_masks,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

EpochCallback = Callable[[int, float, float], None]
"""Called after every epoch with ``(epoch, mean loss, mean faithfulness term)``; it may
raise (e.g. ``optuna.TrialPruned``) to stop training."""

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


def subnetwork_probing_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch],
    official_edges: Iterable[str] | None = None,
    learning_rate: float = 0.1,
    epochs: int = 20,
    regularize_lambda: float = 10,
    mask_fn: str | None = "hard_concrete",
    dropout_p: float = 0.0,
    init_val: float = INIT_LOGIT,
    show_train_graph: bool | str | Path = False,
    circuit_size: int | None = None,
    tree_optimisation: bool = False,
    avoid_edges: Iterable[str] | None = None,
    avoid_lambda: float = 1.0,
    faithfulness_target: str = "kl_div",
    validation_dataloader: Iterable[PromptBatch] | None = None,
    *,
    ablation: str = "mean",
    restore_clean: bool = False,
    seed: int = 0,
    callback: EpochCallback | None = None,
    progress: bool = True,
) -> PruneScores:
    """Score every edge by Subnetwork Probing.

    Args:
        model: A ``HookedTransformer`` (wrapped with separate Q/K/V) or a
            :class:`~harness.engine.patching.PatchableModel`.
        dataloader: Re-iterable batches of :class:`~harness.engine.batches.PromptBatch`.
        official_edges: Accepted and unused (a uniform interface for all algorithms).
        learning_rate: Adam's learning rate on the mask logits.
        epochs: Passes over ``dataloader``; one optimiser step per batch.
        regularize_lambda: Weight of the circuit-size term.
        mask_fn: ``"hard_concrete"``, ``"sigmoid"`` or ``None``/``"none"`` (raw logits).
        dropout_p: Probability of zeroing each mask at each training step.
        init_val: The initial mask logits are ``+init_val`` in tree mode and ``−init_val``
            otherwise, as in the reference (log 5: hard-concrete mask 0.9 or 0.1).
        show_train_graph: ``True`` attaches a plotly figure of the training curves to the
            result (``.train_graph``); a path also writes it there as HTML.
        circuit_size: If given, the size term is ``ReLU(count − circuit_size) / circuit_size``
            instead of ``count / n_edges``.
        tree_optimisation: See the module docstring.
        avoid_edges: Edges penalised for being in the circuit.
        avoid_lambda: Weight of that penalty, added to the size term (so also scaled by
            ``regularize_lambda``, as in the reference): ± the mean probability that an
            avoided edge's mask is on.
        faithfulness_target: ``kl_div``, ``mse``, ``correct_percent``,
            ``logit_diff_percent``, ``answer`` or ``wrong_answer`` (see
            :func:`harness.engine.faithfulness.faithfulness_loss`).
        validation_dataloader: Batches on which the faithfulness of the deterministic
            mask is measured every step (mean and std over examples).
        ablation: The value a patched edge carries: ``mean`` (token-wise mean of the
            corrupt prompts, the reference's), ``resample`` (the paired corrupt prompt) or
            ``zero``. In ``corrupt-run`` mode ``resample`` would patch the corrupt run with
            its own values (every mask a no-op) and is refused.
        restore_clean: Without tree optimisation, restore clean activations into the
            ablated run instead of patching the corrupt run (see :data:`SP_MODES`).
        seed: Seeds the mask noise and dropout; same seed, same scores on the CPU.
        callback: See :data:`EpochCallback`.
        progress: Show a tqdm bar with epoch, loss and faithfulness.

    Returns:
        :class:`~harness.engine.prune_scores.PruneScores`: as the reference, ``|m| + logit``
        (``|M| − logit`` in tree mode) with ``m`` (``M``) the smallest (largest) final
        logit, so that higher means more important; with the per-step training history,
        the mode (``.semantics``) and the final circuit (see :data:`SP_MODES`; a mask is
        on when its deterministic value is above 0.5).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> scores = subnetwork_probing_prune_scores(
        ...     planted.patchable, planted.batches, epochs=30, regularize_lambda=1,
        ...     progress=False)
        >>> set(scores.top(len(planted.edges))) == set(planted.edges)
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    mask_fn = check_mask_fn(mask_fn)
    check_faithfulness_target(faithfulness_target)
    check_ablation(ablation)
    mode = sp_mode(tree_optimisation, restore_clean, ablation)
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}")
    if circuit_size is not None and circuit_size < 1:
        raise ValueError(f"circuit_size must be a positive number of edges, got {circuit_size!r}")
    avoid_index = torch.tensor(
        patchable.graph.edge_indices(avoid_edges or []), dtype=torch.long
    ).to(patchable.device)
    device = patchable.device
    batches = [b.to(device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: SP needs at least one batch")
    validation = [b.to(device) for b in validation_dataloader or []]

    with frozen_weights(patchable.model):
        runs = _prepare_runs(patchable, batches, ablation, mode)
        val_runs = _prepare_runs(patchable, validation, ablation, mode)
        n_edges = patchable.n_edges
        logits = torch.full(
            (n_edges,),
            initial_logit(init_val, tree_optimisation),
            device=device,
            dtype=patchable.dtype,
            requires_grad=True,
        )
        optimiser = torch.optim.Adam([logits], lr=learning_rate)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        history: dict[str, list[float]] = {
            k: [] for k in ("loss", "faithfulness", "regularisation", "val_mean", "val_std")
        }
        bar = _progress_bar(epochs, progress)
        step = 0
        for epoch in bar:
            epoch_losses, epoch_faiths, epoch_regs = [], [], []
            for run in runs:
                masks = drop_masks(
                    sample_masks(mask_fn, logits, run.batch.size, generator), dropout_p, generator
                )  # [batch or 1, n_edges]
                out = run.batch.output_logits(
                    patchable.forward_patched(run.tokens, run.patch, masks, run.resid_start)
                )
                faith = faithfulness_loss(
                    faithfulness_target, out, run.clean_logits, run.batch
                ).mean()
                count = sample_masks(mask_fn, logits, 1, generator)[0].sum()
                if tree_optimisation:
                    count = n_edges - count
                if circuit_size is not None:
                    size_term = torch.relu(count - circuit_size) / circuit_size
                else:
                    size_term = count / n_edges
                if avoid_index.numel():
                    on = mask_probability(mask_fn, logits[avoid_index]).mean()
                    size_term = size_term + (-on if tree_optimisation else on) * avoid_lambda
                loss = faith + regularize_lambda * size_term
                optimiser.zero_grad(set_to_none=True)
                if loss.requires_grad:  # else nothing trains (correct_percent with λ 0)
                    loss.backward()
                optimiser.step()
                epoch_losses.append(loss.detach())
                epoch_faiths.append(faith.detach())
                epoch_regs.append((regularize_lambda * size_term).detach())
                if val_runs:
                    _validate(
                        patchable,
                        val_runs[step % len(val_runs)],
                        logits,
                        mask_fn,
                        faithfulness_target,
                        history,
                    )
                step += 1
            losses = torch.stack(epoch_losses).tolist()  # one device sync per epoch
            faiths = torch.stack(epoch_faiths).tolist()
            history["loss"] += losses
            history["faithfulness"] += faiths
            history["regularisation"] += torch.stack(epoch_regs).tolist()
            mean_loss, mean_faith = sum(losses) / len(losses), sum(faiths) / len(faiths)
            if not math.isfinite(mean_loss):
                raise diverged(mean_loss, epoch, learning_rate)
            if progress:
                bar.set_postfix(
                    {"loss": f"{mean_loss:.4g}", faithfulness_target: f"{mean_faith:.4g}"}
                )
            if callback is not None:
                callback(epoch, mean_loss, mean_faith)

    figure = _train_graph(history, faithfulness_target) if show_train_graph else None
    if isinstance(show_train_graph, (str, Path)):
        figure.write_html(str(show_train_graph))
    return _finish(patchable, logits.detach(), mask_fn, mode, history, figure)


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


def _finish(patchable, final: Tensor, mask_fn: str, mode: str, history, figure) -> PruneScores:
    """Scores from final logits as the reference computes them (higher = more important),
    with the deterministic circuit."""
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


class _Run:
    """Everything one batch needs for a patched forward pass, computed once."""

    def __init__(self, batch, tokens, patch, resid_start, clean_logits) -> None:
        self.batch: PromptBatch = batch
        self.tokens: Tensor = tokens  # [batch, pos]
        self.patch: Tensor = patch  # [batch or 1, n_sources, pos, d_model]
        self.resid_start: Tensor | None = resid_start  # [batch or 1, pos, d_model]
        self.clean_logits: Tensor = clean_logits  # [batch, n_out, vocab]


@torch.no_grad()
def _prepare_runs(
    patchable: PatchableModel, batches: list[PromptBatch], ablation: str, mode: str
) -> list[_Run]:
    if not batches:
        return []
    ablated = ablation_activations(patchable, batches, ablation)
    runs = []
    for batch in batches:
        clean_logits = batch.output_logits(patchable.model(batch.clean))
        if mode == "tree":
            run = _Run(batch, batch.clean, ablated[batch.key], None, clean_logits)
        elif mode == "corrupt-run":
            run = _Run(batch, batch.corrupt, ablated[batch.key], None, clean_logits)
        elif ablation == "resample":  # restore-clean: the corrupt run is the ablated run
            clean = patchable.source_activations(batch.clean)
            run = _Run(batch, batch.corrupt, clean, None, clean_logits)
        else:  # restore-clean: the ablated embedding is the ablated run's start
            clean = patchable.source_activations(batch.clean)
            run = _Run(batch, batch.clean, clean, ablated[batch.key][:, 0], clean_logits)
        runs.append(run)
    return runs


@torch.no_grad()
def _validate(patchable, run: _Run, logits, mask_fn, target, history) -> None:
    masks = deterministic_masks(mask_fn, logits)
    out = run.batch.output_logits(
        patchable.forward_patched(run.tokens, run.patch, masks, run.resid_start)
    )
    values = faithfulness_loss(target, out, run.clean_logits, run.batch)
    history["val_mean"].append(float(values.mean()))
    history["val_std"].append(float(values.std()) if values.numel() > 1 else 0.0)


def _progress_bar(epochs: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(range(int(epochs)), desc="Subnetwork Probing", disable=not enabled, leave=False)


def _train_graph(history: dict[str, list[float]], target: str):
    import plotly.graph_objects as go

    steps = list(range(len(history["loss"])))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=history["loss"], name="Loss"))
    fig.add_trace(go.Scatter(x=steps, y=history["faithfulness"], name=f"Faithfulness ({target})"))
    if history["val_mean"]:
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=history["val_mean"],
                error_y={"type": "data", "array": history["val_std"]},
                name=f"Validation faithfulness ({target})",
            )
        )
    fig.add_trace(
        go.Scatter(x=steps, y=history["regularisation"], name="Regularisation (λ × size)")
    )
    fig.update_layout(title="Subnetwork Probing training", xaxis_title="Step", yaxis_title="Value")
    return fig
