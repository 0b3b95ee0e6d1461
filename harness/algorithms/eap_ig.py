"""EAP with integrated gradients (EAP-IG, Hanna et al. 2024).

EAP (:mod:`harness.algorithms.edge_attribution`) takes the gradient of the loss at the
clean model only. EAP-IG averages it over ``steps`` points of a straight path from the
clean run toward the ablated one, at ``t_k = k / steps`` for ``k = 0 … steps − 1`` (a
left Riemann sum that starts at the clean run, so ``steps=1`` is EAP exactly). Two
paths (``variant``):

- ``inputs`` (Hanna et al.'s EAP-IG): the input embedding moves from the clean one toward
  the ablated one (the corrupt prompt's for resample; the mean or zero embedding), the
  rest of the model runs live. An edge's score is the fixed activation difference
  (ablated − clean source) times the mean gradient at the destination's input.
- ``activations``: every edge moves at once toward its ablated value, i.e. every
  destination reads each source at ``(1 − t) · live + t · ablated``. An edge's score is
  the mean, over the path, of the loss's gradient with respect to the edge's patch weight
  (the live activation difference at that point times the destination's gradient): IG
  over the edge weights from all-0 (the clean model) to all-1 (every edge ablated).

Completeness. Along the ``activations`` path, ``d loss / dt`` is the sum over edges of
the loss's gradient with respect to their weights, so the sum of all scores is a Riemann
sum of ``loss(fully ablated) − loss(clean)`` and converges to it as ``steps`` grows (the
error falls like ``1 / steps``). The ``inputs`` path has that property for the edges out
of ``Resid Start`` only (IG on the input embedding); summed over every edge it counts a
source's effect both on its own edges and on its inputs' edges, and does not converge to
the total change. Measured (``tests/test_eap_ig.py::test_completeness_table``, float64,
resample ablation, logit-difference loss), the relative error |Σ scores − total change| /
|total change|:

    steps                                 1       2       5      10      20      50
    random LN model, activations     4.1097  1.7257  0.6741  0.3357  0.1676  0.0669
    random LN model, inputs, embed.  1.8390  0.5091  0.1655  0.0759  0.0363  0.0141
    random LN model, inputs, all     4.1097  5.6201  5.9883  6.0808  6.1210  6.1431
    planted model, activations       3.6699  1.4433  0.0496  0.8167  0.0121  0.0557
    planted model, inputs, embed.   12.3517  8.3812  3.1768  1.6135  0.3377  0.2389

(The random model: 2 layers, 4 heads, d_model 32, LayerNorm, GELU MLPs, 8 prompts of 6
tokens. The planted model's ReLU MLPs and large unembedding make its path derivative
jump, so its errors fall unevenly.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from harness.algorithms.edge_attribution import EAP_METRICS, eap_loss, resolved_metric
from harness.algorithms.param_spec import Param, hyperparameters
from harness.engine.ablation import ABLATIONS, ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

EAP_IG_VARIANTS = ("inputs", "activations")


@hyperparameters(
    steps=Param("int", low=1),
    variant=Param("choice", choices=EAP_IG_VARIANTS),
    ablation=Param("choice", choices=ABLATIONS),
    metric=Param("choice", choices=EAP_METRICS),
)
def eap_ig_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch],
    official_edges: Iterable[str] | None = None,
    steps: int = 5,
    variant: str = "inputs",
    ablation: str = "resample",
    metric: str = "auto",
    *,
    seed: int = 0,
) -> PruneScores:
    """Score every edge by EAP with integrated gradients.

    Args:
        model: A ``HookedTransformer`` (wrapped with separate Q/K/V) or a
            :class:`~harness.engine.patching.PatchableModel`.
        dataloader: Re-iterable batches of :class:`~harness.engine.batches.PromptBatch`.
        official_edges: Accepted and unused (a uniform interface for all algorithms).
        steps: Points on the path (``1`` is EAP).
        variant: ``inputs`` or ``activations`` (see the module docstring).
        ablation: ``resample``, ``mean`` or ``zero``: the path's far end.
        metric: The loss, as for EAP (:func:`~harness.algorithms.edge_attribution.eap_loss`).
        seed: Accepted and unused: EAP-IG is deterministic.

    Returns:
        Signed scores (the estimated change of the loss, mean over examples, if the edge
        alone were ablated; positive = the edge supports the behaviour).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> scores = eap_ig_prune_scores(planted.patchable, planted.batches, steps=3)
        >>> set(scores.top(8)) <= set(planted.edges)
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    batches = [b.to(patchable.device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: EAP-IG needs at least one batch")
    for batch in batches:
        resolved_metric(metric, batch)  # refuse degenerate choices before any work
    patches = ablation_activations(patchable, batches, ablation)
    n_examples = sum(b.size for b in batches)
    total = torch.zeros(patchable.n_edges, dtype=torch.float64, device=patchable.device)
    with frozen_weights(patchable.model):
        for batch in batches:
            patch = patches[batch.key]  # [batch or 1, n_sources, pos, d_model]
            with torch.no_grad():
                clean_logits = batch.output_logits(patchable.model(batch.clean))
            if variant == "inputs":
                clean = patchable.source_activations(batch.clean)  # [batch, n_src, pos, d]
            for k in range(steps):
                t = k / steps
                if variant == "activations":
                    weights = torch.full(
                        (1, patchable.n_edges), t, device=patchable.device, dtype=patchable.dtype
                    ).requires_grad_(True)
                    logits = patchable.forward_patched(batch.clean, patch, weights)
                else:
                    weights, logits = _inputs_point(patchable, batch, patch, clean, t)
                out = batch.output_logits(logits)  # [batch, n_out, vocab]
                loss = eap_loss(metric, out, clean_logits, batch).sum() / n_examples
                (grad,) = torch.autograd.grad(loss, weights)  # [1, n_edges]
                total += grad[0].double()
    return PruneScores(patchable.graph.edge_names, total / steps)


def _inputs_point(patchable: PatchableModel, batch: PromptBatch, patch, clean, t: float):
    """One point of the ``inputs`` path: the embedding at ``(1 − t) · clean + t · ablated``,
    every edge live, and patch values chosen so that each edge's weight gradient is the
    fixed difference ``ablated − clean`` times its destination's gradient here."""
    start = clean[:, 0] + t * (patch[:, 0] - clean[:, 0])  # [batch, pos, d_model]
    with torch.no_grad():
        live = _sources_from_start(patchable, batch.clean, start)  # [batch, n_src, pos, d]
    shifted = patch - clean + live  # shifted − live = ablated − clean
    weights = torch.zeros(
        1, patchable.n_edges, device=patchable.device, dtype=patchable.dtype
    ).requires_grad_(True)
    logits = patchable.forward_patched(batch.clean, shifted, weights, resid_start=start)
    return weights, logits


def _sources_from_start(patchable: PatchableModel, tokens, start):
    """Every source's output when the model runs from the residual stream ``start``."""
    zeros = torch.zeros(
        1, patchable.graph.n_sources, *start.shape[1:], device=start.device, dtype=start.dtype
    )
    weights = torch.zeros(1, patchable.n_edges, device=start.device, dtype=start.dtype)
    recorded: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(act, hook):
            recorded[name] = act.detach()

        return hook

    # a patched pass with all weights 0 is the live run from ``start``; record sources
    names = [g.hook_name for g in patchable.graph.source_groups]
    hooks = [(n.replace("hook_result", "hook_z"), record(n)) for n in names[1:]]
    with patchable.model.hooks(fwd_hooks=hooks):
        patchable.forward_patched(tokens, zeros, weights, resid_start=start)
    buffer = torch.empty(
        tokens.shape[0], patchable.graph.n_sources, *start.shape[1:], device=start.device,
        dtype=start.dtype,
    )  # fmt: skip
    buffer[:, 0] = start
    modules = dict(patchable.model.named_modules())
    for group in patchable.graph.source_groups[1:]:
        value = recorded[group.hook_name]
        if group.has_head_dim:  # z [batch, pos, head, d_head] @ W_O -> [b, head, pos, d_model]
            w_o = modules[group.hook_name.rsplit(".", 1)[0]].W_O
            value = torch.matmul(value.transpose(1, 2), w_o)
        else:
            value = value[:, None]
        buffer[:, group.first_slot : group.end_slot] = value
    return buffer
