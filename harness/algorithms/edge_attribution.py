"""Edge Attribution Patching (Syed et al. 2023): a first-order estimate of ACDC's test.

The score of an edge is the linear estimate of how much a loss changes when the edge
alone is ablated on the clean prompts,

    (ablation source − clean source) · ∂loss/∂(destination input),

summed over positions, examples and ``d_model``. With exact edge patching this is exactly
the gradient of the loss w.r.t. the edge's patch weight at weight 0 (the clean model), so
one forward and one backward pass per batch score every edge.

Choice of loss. The first-order term of a loss that is minimal at the clean model is
zero: KL from the clean output, or squared error to the clean logits, have zero gradient
there, so every score would be 0. The default ``metric="auto"`` therefore uses the
logit difference (answers minus wrong answers) when batches have wrong answers, as the
EAP paper does, and otherwise the answers' logit, which for a numerical output is the
output value itself (the regression analogue of a logit difference). Those degenerate
choices are refused with a ValueError rather than returning all-zero scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from harness.algorithms.param_spec import Param, hyperparameters
from harness.engine.ablation import ABLATIONS, ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import answer_logit, logit_difference, mean_squared_error
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

EAP_METRICS = ("auto", "logit_diff", "answer", "mse", "kl_div")


def eap_loss(metric: str, logits: Tensor, reference_logits: Tensor, batch: PromptBatch) -> Tensor:
    """Per-example loss EAP differentiates, ``[batch]`` (higher = behaviour lost).

    - ``logit_diff``: minus the logit difference (answers minus wrong answers).
    - ``answer``: minus the answers' mean logit; for a numerical output, minus the value.
    - ``mse``: :func:`harness.engine.faithfulness.mean_squared_error` (numerical outputs only:
      to the clean logits it has zero gradient at the clean model).
    - ``auto``: ``logit_diff`` if the batch has wrong answers, else ``answer``.
    - ``kl_div``: always refused (zero gradient at the clean model).

    Example:
        >>> batch = PromptBatch.create("b", torch.zeros(2, 3, dtype=torch.long),
        ...     torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 2]), torch.tensor([0, 0]))
        >>> logits = torch.tensor([[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]])
        >>> eap_loss("auto", logits, logits, batch)
        tensor([-1., -2.])
    """
    metric = resolved_metric(metric, batch)
    if metric == "logit_diff":
        return -logit_difference(logits, batch)
    if metric == "mse":
        return mean_squared_error(logits, reference_logits, batch)
    if batch.is_regression:  # answer, numerical output
        return -logits[..., 0].mean(-1)
    return -answer_logit(logits, batch)


@hyperparameters(
    ablation=Param("choice", choices=ABLATIONS),
    metric=Param("choice", choices=EAP_METRICS),
)
def eap_prune_scores(
    model: Any,
    dataloader: Iterable[PromptBatch],
    official_edges: Iterable[str] | None = None,
    ablation: str = "resample",
    metric: str = "auto",
    *,
    seed: int = 0,
) -> PruneScores:
    """Score every edge by Edge Attribution Patching.

    Args:
        model: A ``HookedTransformer`` (wrapped with separate Q/K/V) or a
            :class:`~harness.engine.patching.PatchableModel`.
        dataloader: Re-iterable batches of :class:`~harness.engine.batches.PromptBatch`.
        official_edges: Accepted and unused (a uniform interface for all algorithms).
        ablation: The value an ablated edge would carry: ``resample``, ``mean`` or ``zero``.
        metric: The loss whose change is estimated, see :func:`eap_loss` and the module
            docstring for why the default is not KL.
        seed: Accepted and unused: EAP is deterministic.

    Returns:
        :class:`~harness.engine.prune_scores.PruneScores` of signed scores: the estimated change
        of the loss (mean over all examples) if the edge alone were ablated; positive
        means the edge supports the behaviour. Rankings use |score|.

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> scores = eap_prune_scores(planted.patchable, planted.batches)
        >>> set(scores.top(8)) <= set(planted.edges)  # only planted edges are non-zero
        True
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    batches = [b.to(patchable.device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: EAP needs at least one batch")
    for batch in batches:
        resolved_metric(metric, batch)  # refuse degenerate choices before any work
    patches = ablation_activations(patchable, batches, ablation)
    n_examples = sum(b.size for b in batches)
    grad_total = torch.zeros(patchable.n_edges, dtype=torch.float64, device=patchable.device)
    with frozen_weights(patchable.model):
        for batch in batches:
            weights = torch.zeros(
                1, patchable.n_edges, device=patchable.device, dtype=patchable.dtype
            ).requires_grad_(True)
            logits = patchable.forward_patched(batch.clean, patches[batch.key], weights)
            out = batch.output_logits(logits)  # [batch, n_out, vocab]
            loss = eap_loss(metric, out, out.detach(), batch).sum() / n_examples
            (grad,) = torch.autograd.grad(loss, weights)  # [1, n_edges]
            grad_total += grad[0].double()
    return PruneScores(patchable.graph.edge_names, grad_total)


def resolved_metric(metric: str, batch: PromptBatch) -> str:
    """The EAP metric ``metric`` means on ``batch`` (``auto`` resolved), refusing the
    choices whose gradient at the clean model is zero or that the batch cannot support.

    Example:
        >>> batch = PromptBatch.create("b", torch.zeros(2, 3, dtype=torch.long),
        ...     torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 2]))
        >>> resolved_metric("auto", batch)
        'answer'
    """
    has_wrong = not batch.is_regression and batch.wrong_answers.shape[-1] > 0
    if metric == "auto":
        return "logit_diff" if has_wrong else "answer"
    if metric == "kl_div":
        raise ValueError(
            "metric 'kl_div' has zero gradient at the clean model (its minimum), so every EAP "
            "score would be 0; use 'auto', 'logit_diff' or 'answer'"
        )
    if metric == "mse" and not batch.is_regression:
        raise ValueError(
            f"metric 'mse' of batch {batch.key!r} compares with the clean logits and has zero "
            "gradient at the clean model, so every EAP score would be 0; use 'auto', "
            "'logit_diff' or 'answer'"
        )
    if metric == "logit_diff" and not has_wrong:
        raise ValueError(
            f"metric 'logit_diff' needs wrong answers, and batch {batch.key!r} has none "
            "(use 'answer' or 'auto')"
        )
    if metric not in EAP_METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(EAP_METRICS)}")
    return metric
