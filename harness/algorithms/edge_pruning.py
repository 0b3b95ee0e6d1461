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
``target_sparsity`` gives the sweep-based ROC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from harness.algorithms.subnetwork_probing import EpochCallback
from harness.engine.ablation import ablation_activations, check_ablation
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import check_faithfulness_target, faithfulness_loss
from harness.engine.masks import (
    gate_open_probability,
    hard_concrete_deterministic,
    hard_concrete_sample,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores


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
    check_ablation(ablation)
    check_faithfulness_target(faithfulness_target)
    if not 0 <= target_sparsity < 1:
        raise ValueError(f"target_sparsity must be in [0, 1), got {target_sparsity!r}")
    batches = [b.to(patchable.device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: Edge Pruning needs at least one batch")
    device, dtype, n_edges = patchable.device, patchable.dtype, patchable.n_edges
    generator = torch.Generator(device=device).manual_seed(int(seed))
    noise = torch.randn(n_edges, generator=generator, device=device, dtype=dtype)
    log_alpha = (init_log_alpha + 0.01 * noise).requires_grad_(True)
    lambdas = torch.zeros(2, device=device, dtype=dtype, requires_grad=True)
    mask_optimiser = torch.optim.Adam([log_alpha], lr=learning_rate)
    lambda_optimiser = torch.optim.Adam([lambdas], lr=lagrangian_lr)
    history: dict[str, list[float]] = {
        k: [] for k in ("loss", "faithfulness", "sparsity", "target", "lambda1", "lambda2")
    }
    total_steps = max(1, int(epochs) * len(batches))
    warmup_steps = warmup_fraction * total_steps
    step = 0
    with frozen_weights(patchable.model):
        patches = ablation_activations(patchable, batches, ablation)
        with torch.no_grad():
            clean_logits = {b.key: b.output_logits(patchable.model(b.clean)) for b in batches}
        for epoch in _progress(epochs, progress):
            losses, faiths, sparsities, multipliers = [], [], [], []
            for batch in batches:
                gates = hard_concrete_sample(log_alpha, batch.size, generator)  # [batch, n_edges]
                logits = patchable.forward_patched(batch.clean, patches[batch.key], 1 - gates)
                out = batch.output_logits(logits)  # [batch, n_out, vocab]
                faith = faithfulness_loss(
                    faithfulness_target, out, clean_logits[batch.key], batch
                ).mean()
                sparsity = 1 - gate_open_probability(log_alpha).mean()
                ramp = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
                target = target_sparsity * ramp
                gap = sparsity - target
                loss = faith + lambdas[0] * gap + lambdas[1] * gap**2
                mask_optimiser.zero_grad(set_to_none=True)
                lambda_optimiser.zero_grad(set_to_none=True)
                loss.backward()
                lambdas.grad.neg_()  # ascent on the multipliers
                mask_optimiser.step()
                lambda_optimiser.step()
                losses.append(loss.detach())
                faiths.append(faith.detach())
                sparsities.append(sparsity.detach())
                multipliers.append(lambdas.detach().clone())
                history["target"].append(target)
                step += 1
            epoch_losses = torch.stack(losses).tolist()
            epoch_faiths = torch.stack(faiths).tolist()
            history["loss"] += epoch_losses
            history["faithfulness"] += epoch_faiths
            history["sparsity"] += torch.stack(sparsities).tolist()  # one sync per epoch
            lambda1, lambda2 = torch.stack(multipliers).T.tolist()
            history["lambda1"] += lambda1
            history["lambda2"] += lambda2
            mean_loss = sum(epoch_losses) / len(epoch_losses)
            mean_faith = sum(epoch_faiths) / len(epoch_faiths)
            if not math.isfinite(mean_loss):
                raise FloatingPointError(
                    f"Edge Pruning loss is {mean_loss} at epoch {epoch} (learning_rate "
                    f"{learning_rate} or lagrangian_lr {lagrangian_lr} too high?)"
                )
            if callback is not None:
                callback(epoch, mean_loss, mean_faith)
    final = log_alpha.detach()
    names = patchable.graph.edge_names
    kept = hard_concrete_deterministic(final) > 0.5  # [n_edges]
    circuit = frozenset(names[i] for i in torch.nonzero(kept).flatten().tolist())
    return PruneScores(names, final - final.min(), history=history, circuit=circuit)


def _progress(epochs: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(range(int(epochs)), desc="Edge Pruning", disable=not enabled, leave=False)
