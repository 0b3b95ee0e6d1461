"""Subnetwork Probing (Cao et al. 2021) over the edges of a model's graph.

SP learns one mask logit per edge with Adam. Each step samples a mask per example
(hard concrete by default), runs one patched forward pass, and minimises

    loss = faithfulness term + regularize_lambda × (size term [± avoid penalty])

With default arguments it computes what the reference (auto-circuit 1.0.1) computes.
A mask of 1 always means "this edge is patched"; what the base run is, what an edge is
patched with and which masks form the circuit depend on the mode (:data:`SP_MODES`, see
:mod:`harness.algorithms.sp_common`): ``tree``, ``corrupt-run`` or ``restore-clean``.

``tree`` is ``tree_optimisation=True``. ``corrupt-run`` is the reference's code with
``tree_optimisation=False`` (the default). ``restore-clean`` (``restore_clean=True``) is
what the reference's docstring describes for that case, and finds the edges whose clean
value restores the output. The ablation value is, as in the reference by default, the
token-wise mean of the corrupt prompts' activations (``ablation="mean"``); ``resample``
and ``zero`` are options. With a positive ``init_val`` every mode starts from a nearly
empty circuit; a negative one starts from a nearly full circuit.

The training loop is :func:`harness.algorithms.training_loop.train`; this module gives it
SP's step (:class:`_Probe`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.algorithms.param_spec import Param, hyperparameters
from harness.algorithms.sp_common import (
    SP_MODES,
    PreparedRun,
    diverged,
    final_scores,
    initial_logit,
    prepare_runs,
    size_term,
    sp_mode,
)
from harness.algorithms.training_loop import EpochCallback, Progress, on_device, train
from harness.engine.ablation import ABLATIONS
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import FAITHFULNESS_TARGETS, faithfulness_loss
from harness.engine.masks import (
    INIT_LOGIT,
    MASK_FNS,
    deterministic_masks,
    drop_masks,
    mask_probability,
    sample_masks,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

__all__ = [
    "SP_MODES",
    "TERMS",
    "EpochCallback",
    "diverged",
    "initial_logit",
    "sp_mode",
    "subnetwork_probing_prune_scores",
]

TERMS = ("loss", "faithfulness", "regularisation")
"""What SP records at every step, besides the validation's ``val_mean`` and ``val_std``."""


@hyperparameters(
    learning_rate=Param("float", low=0, low_open=True, also_on_call=(0,)),
    epochs=Param("int", low=1),
    regularize_lambda=Param("float", low=0),
    mask_fn=Param("choice", choices=(*MASK_FNS, None)),
    dropout_p=Param("float", low=0, high=1, high_open=True, call_words="in [0, 1)"),
    init_val=Param("float"),
    show_train_graph=Param("bool_or_path"),
    circuit_size=Param("int", low=1, optional=True, call_words="a positive number of edges"),
    tree_optimisation=Param("bool"),
    avoid_edges=Param("edges", optional=True),
    avoid_lambda=Param("float", low=0),
    faithfulness_target=Param("choice", choices=FAITHFULNESS_TARGETS),
    ablation=Param("choice", choices=ABLATIONS),
    restore_clean=Param("bool"),
)
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
        faithfulness_target: One of ``FAITHFULNESS_TARGETS`` (``kl_div``, ``mse``, ...; see
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
    mode = sp_mode(tree_optimisation, restore_clean, ablation)
    settings = _Settings(
        learning_rate=learning_rate,
        regularize_lambda=regularize_lambda,
        mask_fn=mask_fn,
        dropout_p=dropout_p,
        init_val=init_val,
        circuit_size=circuit_size,
        tree_optimisation=tree_optimisation,
        avoid_index=patchable.graph.edge_indices(avoid_edges or []),
        avoid_lambda=avoid_lambda,
        faithfulness_target=faithfulness_target,
        seed=seed,
    )
    batches = on_device(dataloader, patchable.device, "SP")
    validation = [b.to(patchable.device) for b in validation_dataloader or []]
    with frozen_weights(patchable.model):
        probe = _Probe(patchable, settings, mode, ablation, batches, validation)
        history = probe.train(epochs, callback, progress)
    figure = _figure(history, faithfulness_target, show_train_graph)
    return final_scores(patchable, probe.logits.detach(), mask_fn, mode, history, figure)


@dataclass(frozen=True)
class _Settings:
    """What one SP step needs of SP's arguments (see
    :func:`subnetwork_probing_prune_scores`); ``avoid_index`` are the avoided edges'
    indices."""

    learning_rate: float
    regularize_lambda: float
    mask_fn: str | None
    dropout_p: float
    init_val: float
    circuit_size: int | None
    tree_optimisation: bool
    avoid_index: list[int]
    avoid_lambda: float
    faithfulness_target: str
    seed: int


class _Probe:
    """One SP training: the prepared runs (training and validation batches in ``mode``),
    the mask logits ``[n_edges]``, Adam on them and the seeded generator of mask noise and
    dropout; :meth:`step` is one optimiser step on one run."""

    def __init__(
        self,
        patchable: PatchableModel,
        settings: _Settings,
        mode: str,
        ablation: str,
        batches: list[PromptBatch],
        validation: list[PromptBatch],
    ) -> None:
        self.patchable, self.settings = patchable, settings
        self.runs = prepare_runs(patchable, batches, ablation, mode)
        self.validation = prepare_runs(patchable, validation, ablation, mode)
        device = patchable.device
        self.avoid_index = torch.tensor(settings.avoid_index, dtype=torch.long).to(device)
        self.logits = torch.full(
            (patchable.n_edges,),
            initial_logit(settings.init_val, settings.tree_optimisation),
            device=device,
            dtype=patchable.dtype,
            requires_grad=True,
        )
        self.optimiser = torch.optim.Adam([self.logits], lr=settings.learning_rate)
        self.generator = torch.Generator(device=device).manual_seed(int(settings.seed))
        self.validation_history: dict[str, list[float]] = {"val_mean": [], "val_std": []}

    def train(
        self, epochs: int, callback: EpochCallback | None, progress: bool
    ) -> dict[str, list[float]]:
        """Train ``epochs`` epochs; the history of every step (the validation's too)."""
        settings = self.settings
        log = train(
            self.step,
            len(self.runs),
            epochs,
            TERMS,
            diverged=lambda _, loss, epoch: diverged(loss, epoch, settings.learning_rate),
            callback=callback,
            progress=Progress("Subnetwork Probing", settings.faithfulness_target)
            if progress
            else None,
            device=self.patchable.device,
        )
        return {**log.histories[0], **self.validation_history}

    def step(self, epoch: int, batch: int) -> Tensor:
        """One optimiser step on run ``batch``: ``[3]``, the loss, the faithfulness term and
        the regularisation (λ × size term) before the step."""
        s, run, logits, generator = self.settings, self.runs[batch], self.logits, self.generator
        masks = drop_masks(
            sample_masks(s.mask_fn, logits, run.batch.size, generator), s.dropout_p, generator
        )  # [batch or 1, n_edges]
        out = run.batch.output_logits(
            self.patchable.forward_patched(run.tokens, run.patch, masks, run.resid_start)
        )  # [batch, n_out, vocab]
        faith = faithfulness_loss(s.faithfulness_target, out, run.clean_logits, run.batch).mean()
        count = sample_masks(s.mask_fn, logits, 1, generator)[0].sum()
        size = size_term(count, self.patchable.n_edges, s.tree_optimisation, s.circuit_size)
        if self.avoid_index.numel():
            on = mask_probability(s.mask_fn, logits[self.avoid_index]).mean()
            size = size + (-on if s.tree_optimisation else on) * s.avoid_lambda
        loss = faith + s.regularize_lambda * size
        self.optimiser.zero_grad(set_to_none=True)
        if loss.requires_grad:  # else nothing trains (correct_percent with λ 0)
            loss.backward()
        self.optimiser.step()
        if self.validation:
            step = epoch * len(self.runs) + batch
            self._validate(self.validation[step % len(self.validation)])
        return torch.stack([loss.detach(), faith.detach(), (s.regularize_lambda * size).detach()])

    @torch.no_grad()
    def _validate(self, run: PreparedRun) -> None:
        """The deterministic mask's faithfulness on ``run``: mean and std over examples."""
        masks = deterministic_masks(self.settings.mask_fn, self.logits)
        out = run.batch.output_logits(
            self.patchable.forward_patched(run.tokens, run.patch, masks, run.resid_start)
        )
        values = faithfulness_loss(
            self.settings.faithfulness_target, out, run.clean_logits, run.batch
        )
        self.validation_history["val_mean"].append(float(values.mean()))
        self.validation_history["val_std"].append(
            float(values.std()) if values.numel() > 1 else 0.0
        )


def _figure(history: dict[str, list[float]], target: str, show_train_graph: bool | str | Path):
    """The training curves' figure, if asked for; written to ``show_train_graph`` if it
    is a path."""
    figure = _train_graph(history, target) if show_train_graph else None
    if isinstance(show_train_graph, (str, Path)):
        figure.write_html(str(show_train_graph))
    return figure


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
