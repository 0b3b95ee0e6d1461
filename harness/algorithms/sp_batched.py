"""Several Subnetwork Probing trainings in one pass.

K hyperparameter settings train together: the batch is repeated once per trial, each
trial's masks are sampled from its own logits and its own seeded generator, and the loss
is the sum of the trials' losses. Trials share no parameter, so the gradient of the sum
with respect to one trial's logits is that trial's own gradient, and every trial follows
exactly the path it would follow alone (same noise, same Adam updates) up to float
rounding. A trial that reaches its epochs, or whose callback raises (pruning), leaves the
batch; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from harness.ablation import check_ablation
from harness.algorithms.subnetwork_probing import (
    _finish,
    _prepare_runs,
)
from harness.data import PromptBatch
from harness.faithfulness import check_faithfulness_target, faithfulness_loss
from harness.masks import INIT_LOGIT, check_mask_fn, drop_masks, sample_masks
from harness.patching import PatchableModel, frozen_weights
from harness.prune_scores import PruneScores

PER_TRIAL = ("learning_rate", "regularize_lambda", "init_val", "epochs", "seed")
_DEFAULTS = {
    "learning_rate": 0.1,
    "regularize_lambda": 10.0,
    "init_val": INIT_LOGIT,
    "epochs": 20,
    "seed": 0,
}


def subnetwork_probing_batched(
    model: Any,
    dataloader: Iterable[PromptBatch],
    trials: Sequence[Mapping[str, Any]],
    *,
    mask_fn: str | None = "hard_concrete",
    dropout_p: float = 0.0,
    circuit_size: int | None = None,
    tree_optimisation: bool = False,
    faithfulness_target: str = "kl_div",
    ablation: str = "resample",
    callbacks: Sequence[Callable[[int, float, float], None] | None] | None = None,
) -> list[PruneScores | BaseException]:
    """Train one SP per entry of ``trials`` in a single pass over the data.

    Args:
        model: A HookedTransformer or PatchableModel.
        dataloader: Re-iterable batches.
        trials: Per-trial settings among ``learning_rate``, ``regularize_lambda``,
            ``init_val``, ``epochs`` and ``seed`` (SP's defaults where absent).
        mask_fn, dropout_p, circuit_size, tree_optimisation, faithfulness_target,
            ablation: As in :func:`subnetwork_probing_prune_scores`, shared by all trials.
        callbacks: One per trial (or ``None``), called as ``(epoch, loss, faithfulness)``
            after each of its epochs; an exception stops that trial only.

    Returns:
        Per trial, its PruneScores, or the exception its callback raised.

    Example:
        >>> from harness.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> results = subnetwork_probing_batched(planted.patchable, planted.batches,
        ...     [{"seed": 0, "epochs": 2}, {"seed": 1, "learning_rate": 0.05, "epochs": 3}])
        >>> [len(r.history["loss"]) for r in results]
        [4, 6]
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    mask_fn = check_mask_fn(mask_fn)
    check_faithfulness_target(faithfulness_target)
    check_ablation(ablation)
    settings = []
    for i, trial in enumerate(trials):
        unknown = set(trial) - set(PER_TRIAL)
        if unknown:
            allowed = ", ".join(PER_TRIAL)
            raise ValueError(
                f"trial {i}: {sorted(unknown)[0]!r} cannot vary per trial (only {allowed})"
            )
        setting = {**_DEFAULTS, **trial}
        if int(setting["epochs"]) != setting["epochs"] or setting["epochs"] < 1:
            raise ValueError(
                f"trial {i}: epochs must be an integer >= 1, got {setting['epochs']!r}"
            )
        settings.append(setting)
    if not settings:
        raise ValueError("no trials to train")
    callbacks = list(callbacks) if callbacks is not None else [None] * len(settings)
    device = patchable.device
    batches = [b.to(device) for b in dataloader]
    if not batches:
        raise ValueError("dataloader is empty: SP needs at least one batch")

    results: list[PruneScores | BaseException | None] = [None] * len(settings)
    with frozen_weights(patchable.model):
        runs = _prepare_runs(patchable, batches, ablation, tree_optimisation)
        n_edges = patchable.n_edges
        sign = -1.0 if tree_optimisation else 1.0
        logits = [
            torch.full(
                (n_edges,),
                sign * s["init_val"],
                device=device,
                dtype=patchable.dtype,
                requires_grad=True,
            )
            for s in settings
        ]
        optimiser = torch.optim.Adam(
            [
                {"params": [p], "lr": s["learning_rate"]}
                for p, s in zip(logits, settings, strict=True)
            ]
        )
        generators = [torch.Generator(device=device).manual_seed(int(s["seed"])) for s in settings]
        histories = [{"loss": [], "faithfulness": [], "regularisation": []} for _ in settings]
        for epoch in range(max(int(s["epochs"]) for s in settings)):
            active = [
                k for k, s in enumerate(settings) if results[k] is None and epoch < int(s["epochs"])
            ]
            if not active:
                break
            epoch_terms: dict[int, list[tuple[torch.Tensor, ...]]] = {k: [] for k in active}
            for run in runs:
                size = run.batch.size
                masks, sizes = [], []
                for k in active:
                    sampled = sample_masks(mask_fn, logits[k], size, generators[k])
                    dropped = drop_masks(sampled, dropout_p, generators[k])  # as SP alone does
                    masks.append(dropped.expand(size, -1))
                    count = sample_masks(mask_fn, logits[k], 1, generators[k])[0].sum()
                    sizes.append(n_edges - count if tree_optimisation else count)
                n = len(active)
                patch = run.patch if run.patch.shape[0] == 1 else run.patch.repeat(n, 1, 1, 1)
                resid = run.resid_start
                if resid is not None and resid.shape[0] != 1:
                    resid = resid.repeat(n, 1, 1)
                out = run.batch.output_logits(
                    patchable.forward_patched(
                        run.tokens.repeat(n, 1), patch, torch.cat(masks), resid
                    )
                )  # [n × batch, n_out, vocab]
                total = 0.0
                for i, k in enumerate(active):
                    chunk = out[i * size : (i + 1) * size]
                    faith = faithfulness_loss(
                        faithfulness_target, chunk, run.clean_logits, run.batch
                    ).mean()
                    count = sizes[i]
                    size_term = (
                        torch.relu(count - circuit_size) / circuit_size
                        if circuit_size is not None
                        else count / n_edges
                    )
                    reg = settings[k]["regularize_lambda"] * size_term
                    total = total + faith + reg
                    epoch_terms[k].append((faith + reg, faith, reg))
                optimiser.zero_grad(set_to_none=True)
                total.backward()
                optimiser.step()
            for k in active:
                terms = torch.stack([torch.stack(t) for t in epoch_terms[k]]).detach().cpu()
                history = histories[k]
                history["loss"] += terms[:, 0].tolist()
                history["faithfulness"] += terms[:, 1].tolist()
                history["regularisation"] += terms[:, 2].tolist()
                if callbacks[k] is not None:
                    try:
                        callbacks[k](epoch, float(terms[:, 0].mean()), float(terms[:, 1].mean()))
                    except Exception as error:  # e.g. optuna.TrialPruned: this trial stops
                        results[k] = error
    for k in range(len(settings)):
        if results[k] is None:
            results[k] = _finish(
                patchable,
                logits[k].detach(),
                mask_fn,
                tree_optimisation,
                {**histories[k], "val_mean": [], "val_std": []},
                None,
            )
    return results  # type: ignore[return-value]
