"""Edge Pruning (Bhaskar et al. 2024): hard-concrete edge masks trained to a target sparsity.

Every edge has a log-alpha, initialised near "keep" (``init_log_alpha`` plus a little
seeded noise). Each step samples a hard-concrete gate ``z`` per edge and example (the
stretch and temperature of :mod:`harness.engine.masks`), runs the clean prompts with each edge
moved toward its ablated value by ``1 − z``, and minimises

    faithfulness + λ1 · (s − t) + λ2 · (s − t)²

over the log-alphas while two Lagrange multipliers ``λ1, λ2`` are learned by gradient
*ascent* on the same expression. ``s`` is the expected sparsity, one minus the mean
probability that a gate is open, and ``t`` the target sparsity, ramped linearly from 0
to ``target_sparsity`` over the first ``warmup_fraction`` of the steps. The ascent makes
the constraint bite exactly as hard as needed to hold ``s`` at ``t``, instead of a fixed
penalty weight as in SP.

Faithfulness is KL to the full model by default, as in the paper; the runner gives a task
with one numerical output (tracr-proportion) its own target, ``mse``, since KL over a
single output is always 0 there.

The scores are the learned log-alphas, shifted by their minimum so that every score is
>= 0 (rankings by |score|, as the ROC uses, then follow the log-alphas). The circuit is
the edges whose deterministic gate exceeds 0.5 (log-alpha > 0); a sweep over
``target_sparsity`` gives the sweep-based ROC. The training loop is
:func:`harness.algorithms.training_loop.train`; this module gives it Edge Pruning's step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from harness.algorithms.param_spec import Param, hyperparameters
from harness.algorithms.training_loop import (
    EpochCallback,
    Progress,
    TrainingLog,
    on_device,
    train,
)
from harness.engine.ablation import ABLATIONS, ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import FAITHFULNESS_TARGETS, faithfulness_loss
from harness.engine.masks import (
    gate_open_probability,
    hard_concrete_deterministic,
    hard_concrete_sample,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

TERMS = ("loss", "faithfulness", "sparsity", "lambda1", "lambda2")
"""What the training loop records at every step (the history adds the ramped ``target``)."""


@hyperparameters(
    target_sparsity=Param("float", low=0, high=1, high_open=True, call_words="in [0, 1)"),
    learning_rate=Param("float", low=0, low_open=True, also_on_call=(0,)),
    lagrangian_lr=Param("float", low=0, low_open=True, also_on_call=(0,)),
    epochs=Param("int", low=1),
    warmup_fraction=Param("float", low=0, high=1),
    init_log_alpha=Param("float"),
    faithfulness_target=Param("choice", choices=FAITHFULNESS_TARGETS),
    ablation=Param("choice", choices=ABLATIONS),
)
def edge_pruning_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch],
    official_edges: Iterable[str] | None = None,
    target_sparsity: float = 0.95,
    learning_rate: float = 0.1,
    lagrangian_lr: float = 0.1,
    epochs: int = 100,
    warmup_fraction: float = 0.5,
    init_log_alpha: float = 3.0,
    faithfulness_target: str = "kl_div",
    *,
    ablation: str = "resample",
    seed: int = 0,
    callback: EpochCallback | None = None,
    progress: bool = True,
) -> PruneScores:
    """Score every edge by Edge Pruning.

    Args:
        model: A ``HookedTransformer`` (wrapped with separate Q/K/V) or a
            :class:`~harness.engine.patching.PatchableModel`.
        dataloader: Re-iterable batches of :class:`~harness.engine.batches.PromptBatch`.
        official_edges: Accepted and unused (a uniform interface for all algorithms).
        target_sparsity: The fraction of edges to prune, in ``[0, 1)``.
        learning_rate: Adam's learning rate on the log-alphas.
        lagrangian_lr: Adam's learning rate on the two multipliers (ascent).
        epochs: Passes over ``dataloader``; one step per batch.
        warmup_fraction: The share of the steps over which the target ramps up from 0.
        init_log_alpha: The log-alphas' initial mean (positive: gates start open).
        faithfulness_target: What the circuit's output is compared by
            (:func:`harness.engine.faithfulness.faithfulness_loss`), KL by default.
        ablation: What a pruned edge carries: ``resample``, ``mean`` or ``zero``.
        seed: Seeds the initial noise and the gate samples.
        callback: Called after each epoch with ``(epoch, mean loss, mean faithfulness)``.
        progress: Show a progress bar.

    Returns:
        :class:`~harness.engine.prune_scores.PruneScores` with the shifted log-alphas, the
        circuit and the training history (``loss``, ``faithfulness``, ``sparsity``,
        ``target``, ``lambda1``, ``lambda2`` per step).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit(n_batches=1, batch_size=16)
        >>> scores = edge_pruning_prune_scores(planted.patchable, planted.batches,
        ...                                    epochs=40, target_sparsity=0.9, progress=False)
        >>> len(set(scores.top(8)) & set(planted.edges)) >= 6
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    batches = on_device(dataloader, patchable.device, "Edge Pruning")
    with frozen_weights(patchable.model):
        pruning = _EdgePruning(
            patchable,
            batches,
            ablation,
            init_log_alpha=init_log_alpha,
            learning_rate=learning_rate,
            lagrangian_lr=lagrangian_lr,
            seed=seed,
            faithfulness_target=faithfulness_target,
            target_sparsity=target_sparsity,
            warmup_steps=warmup_fraction * max(1, int(epochs) * len(batches)),
        )
        log = train(
            pruning.step,
            len(batches),
            epochs,
            TERMS,
            diverged=lambda _, loss, epoch: FloatingPointError(
                f"Edge Pruning loss is {loss} at epoch {epoch} (learning_rate "
                f"{learning_rate} or lagrangian_lr {lagrangian_lr} too high?)"
            ),
            callback=callback,
            progress=Progress("Edge Pruning") if progress else None,
            device=patchable.device,
        )
    return pruning.scores(log)


class _EdgePruning:
    """One Edge Pruning training: the log-alphas ``[n_edges]`` (Adam, descent), the two
    multipliers (Adam, ascent), the seeded generator of the initial noise and the gates,
    and each batch's ablated sources and clean output, computed once."""

    def __init__(
        self,
        patchable: PatchableModel,
        batches: list[PromptBatch],
        ablation: str,
        *,
        init_log_alpha: float,
        learning_rate: float,
        lagrangian_lr: float,
        seed: int,
        faithfulness_target: str,
        target_sparsity: float,
        warmup_steps: float,
    ) -> None:
        self.patchable, self.batches = patchable, batches
        self.faithfulness_target = faithfulness_target
        self.target_sparsity, self.warmup_steps = target_sparsity, warmup_steps
        device, dtype, n_edges = patchable.device, patchable.dtype, patchable.n_edges
        self.generator = torch.Generator(device=device).manual_seed(int(seed))
        noise = torch.randn(n_edges, generator=self.generator, device=device, dtype=dtype)
        self.log_alpha = (init_log_alpha + 0.01 * noise).requires_grad_(True)
        self.lambdas = torch.zeros(2, device=device, dtype=dtype, requires_grad=True)
        self.mask_optimiser = torch.optim.Adam([self.log_alpha], lr=learning_rate)
        self.lambda_optimiser = torch.optim.Adam([self.lambdas], lr=lagrangian_lr)
        self.patches = ablation_activations(patchable, batches, ablation)
        with torch.no_grad():
            self.clean_logits = {
                b.key: b.output_logits(patchable.model(b.clean)) for b in batches
            }  # each [batch, n_out, vocab]

    def target(self, step: int) -> float:
        """The target sparsity at ``step``: ramped linearly from 0 over the warmup."""
        ramp = min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        return self.target_sparsity * ramp

    def step(self, epoch: int, index: int) -> Tensor:
        """One step on batch ``index``: ``[5]``, the loss, faithfulness and expected
        sparsity before it, and the multipliers after it."""
        batch, log_alpha, lambdas = self.batches[index], self.log_alpha, self.lambdas
        gates = hard_concrete_sample(log_alpha, batch.size, self.generator)  # [batch, n_edges]
        logits = self.patchable.forward_patched(batch.clean, self.patches[batch.key], 1 - gates)
        out = batch.output_logits(logits)  # [batch, n_out, vocab]
        faith = faithfulness_loss(
            self.faithfulness_target, out, self.clean_logits[batch.key], batch
        ).mean()
        sparsity = 1 - gate_open_probability(log_alpha).mean()
        gap = sparsity - self.target(epoch * len(self.batches) + index)
        loss = faith + lambdas[0] * gap + lambdas[1] * gap**2
        self.mask_optimiser.zero_grad(set_to_none=True)
        self.lambda_optimiser.zero_grad(set_to_none=True)
        loss.backward()
        lambdas.grad.neg_()  # ascent on the multipliers
        self.mask_optimiser.step()
        self.lambda_optimiser.step()
        terms = torch.stack([loss.detach(), faith.detach(), sparsity.detach()])
        return torch.cat([terms, lambdas.detach()])

    def scores(self, log: TrainingLog) -> PruneScores:
        """The shifted log-alphas, the circuit of open gates and the per-step history."""
        trained = log.histories[0]
        history = {
            "loss": trained["loss"],
            "faithfulness": trained["faithfulness"],
            "sparsity": trained["sparsity"],
            "target": [self.target(step) for step in range(len(trained["loss"]))],
            "lambda1": trained["lambda1"],
            "lambda2": trained["lambda2"],
        }
        final = self.log_alpha.detach()
        names = self.patchable.graph.edge_names
        kept = hard_concrete_deterministic(final) > 0.5  # [n_edges]
        circuit = frozenset(names[i] for i in torch.nonzero(kept).flatten().tolist())
        return PruneScores(names, final - final.min(), history=history, circuit=circuit)
