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

import dataclasses
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from harness.algorithms.param_spec import check_arguments, hyperparameters
from harness.algorithms.sp_common import (
    PreparedRun,
    diverged,
    final_scores,
    initial_logit,
    prepare_runs,
    size_term,
    sp_mode,
)
from harness.algorithms.subnetwork_probing import TERMS, subnetwork_probing_prune_scores
from harness.algorithms.training_loop import EpochCallback, on_device, train_trials
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import faithfulness_loss
from harness.engine.masks import (
    drop_masks,
    hard_concrete_from_noise,
    sample_masks,
    uniform_noise,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

PER_TRIAL = ("learning_rate", "regularize_lambda", "init_val", "epochs", "seed")
SHARED = (
    "mask_fn",
    "dropout_p",
    "circuit_size",
    "tree_optimisation",
    "faithfulness_target",
    "ablation",
    "restore_clean",
)
"""SP's parameters that every trial of a batch shares."""
DEFAULT_PASS_BYTES = {"cpu": 128 * 2**20, "cuda": 4 * 2**30}
"""Patch-buffer bytes per pass, by device type (others: the CUDA value). The buffer is
``[trials × batch, n_sources, pos, d_model]``; backward holds a second one as large."""
_SP = subnetwork_probing_prune_scores.parameters  # type: ignore[attr-defined]
_DEFAULTS = {
    **{name: _SP[name].default for name in PER_TRIAL if name in _SP},
    "seed": inspect.signature(subnetwork_probing_prune_scores).parameters["seed"].default,
}


@hyperparameters(**{name: _SP[name] for name in SHARED})
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
    ablation: str = "mean",
    restore_clean: bool = False,
    callbacks: Sequence[EpochCallback | None] | None = None,
    max_pass_bytes: int | None = None,
) -> list[PruneScores | BaseException]:
    """Train one SP per entry of ``trials`` in a single pass over the data.

    Args:
        model: A HookedTransformer or PatchableModel.
        dataloader: Re-iterable batches.
        trials: Per-trial settings among ``learning_rate``, ``regularize_lambda``,
            ``init_val``, ``epochs`` and ``seed`` (SP's defaults where absent).
        mask_fn, dropout_p, circuit_size, tree_optimisation, faithfulness_target,
            ablation, restore_clean: As in :func:`subnetwork_probing_prune_scores`,
            shared by all trials.
        callbacks: One per trial (or ``None``), called as ``(epoch, loss, faithfulness)``
            after each of its epochs; an exception stops that trial only.
        max_pass_bytes: At most this many bytes of patch buffer per forward pass: trials
            beyond it go in further passes of the same step (same results). Default
            :data:`DEFAULT_PASS_BYTES` for the device: on a CPU a big pass is slower
            per example than several small ones; on a GPU it bounds the memory.

    Returns:
        Per trial, its PruneScores, or the exception that stopped it: its callback's, or
        a FloatingPointError when its loss stopped being finite (as SP alone raises).

    Example:
        >>> from harness.testing.planted import planted_circuit
        >>> planted = planted_circuit()
        >>> results = subnetwork_probing_batched(planted.patchable, planted.batches,
        ...     [{"seed": 0, "epochs": 2}, {"seed": 1, "learning_rate": 0.05, "epochs": 3}])
        >>> [len(r.history["loss"]) for r in results]
        [4, 6]
    """
    patchable = model if isinstance(model, PatchableModel) else PatchableModel.wrap(model)
    mode = sp_mode(tree_optimisation, restore_clean, ablation)
    settings = _trial_settings(trials)
    batches = on_device(dataloader, patchable.device, "SP")
    limit = max_pass_bytes or DEFAULT_PASS_BYTES.get(
        patchable.device.type, DEFAULT_PASS_BYTES["cuda"]
    )
    with frozen_weights(patchable.model):
        training = _BatchedTraining(
            patchable,
            prepare_runs(patchable, batches, ablation, mode),
            settings,
            limit,
            mask_fn=mask_fn,
            dropout_p=dropout_p,
            circuit_size=circuit_size,
            tree_optimisation=tree_optimisation,
            faithfulness_target=faithfulness_target,
        )
        log = train_trials(
            training.step,
            len(batches),
            [int(s["epochs"]) for s in settings],
            TERMS,
            diverged=lambda k, loss, epoch: diverged(loss, epoch, settings[k]["learning_rate"]),
            callbacks=callbacks,
            device=patchable.device,
        )
    return [
        error
        if error is not None
        else final_scores(
            patchable,
            training.logits[k].detach().clone(),
            mask_fn,
            mode,
            {**log.histories[k], "val_mean": [], "val_std": []},
        )
        for k, error in enumerate(log.errors)
    ]


def _trial_settings(trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each trial's settings over SP's defaults, refusing a setting that cannot vary per
    trial and a value SP refuses (one line, naming the trial)."""
    settings = []
    for i, trial in enumerate(trials):
        unknown = set(trial) - set(PER_TRIAL)
        if unknown:
            allowed = ", ".join(PER_TRIAL)
            raise ValueError(
                f"trial {i}: {sorted(unknown)[0]!r} cannot vary per trial (only {allowed})"
            )
        check_arguments(_SP, trial, f"trial {i}: ")
        settings.append({**_DEFAULTS, **trial})
    if not settings:
        raise ValueError("no trials to train")
    return settings


def _passes(active: list[int], trial_bytes: int, limit: int) -> list[list[int]]:
    """``active`` cut into groups whose patch buffers fit in ``limit`` bytes (at least one
    trial per group)."""
    per_pass = max(1, limit // max(trial_bytes, 1))
    return [active[i : i + per_pass] for i in range(0, len(active), per_pass)]


class _BatchedTraining:
    """The state of K trials training together: their logits ``[K, n_edges]``, optimiser
    and generators, and one training step for any group of them on one batch."""

    def __init__(
        self,
        patchable: PatchableModel,
        runs: list[PreparedRun],
        settings: list[dict[str, Any]],
        limit: int,
        **shared: Any,
    ) -> None:
        self.patchable, self.runs, self.settings, self.shared = patchable, runs, settings, shared
        self.limit = limit  # patch-buffer bytes per pass
        device, dtype = patchable.device, patchable.dtype
        tree = shared["tree_optimisation"]
        initial = torch.tensor([initial_logit(s["init_val"], tree) for s in settings], dtype=dtype)
        self.logits = initial[:, None].expand(len(settings), patchable.n_edges).to(device)
        self.logits = self.logits.clone().requires_grad_(True)  # [K, n_edges]
        self.optimiser = _TrialAdam(self.logits, [s["learning_rate"] for s in settings])
        self.regularize_lambda = torch.tensor(
            [s["regularize_lambda"] for s in settings], device=device, dtype=dtype
        )  # [K]
        self.generators = [
            torch.Generator(device=device).manual_seed(int(s["seed"])) for s in settings
        ]
        self._repeated: dict[tuple[int, int], _RepeatedRun] = {}
        self._indices: dict[tuple[int, ...], torch.Tensor] = {}

    def step(self, epoch: int, batch: int, active: list[int]) -> list[tuple[list[int], Tensor]]:
        """One SP step of every trial in ``active`` on run ``batch``, in as many passes as
        the patch buffer's limit needs: per pass, its trials and their ``[n, 3]`` terms."""
        groups = _passes(active, self.trial_bytes(self.runs[batch]), self.limit)
        return [(group, self.train_pass(group, batch)) for group in groups]

    def trial_bytes(self, run: PreparedRun) -> int:
        """Bytes of one trial's share of the patch buffer on ``run``."""
        graph, cfg = self.patchable.graph, self.patchable.model.cfg
        per_example = graph.n_sources * run.tokens.shape[1] * cfg.d_model
        return run.batch.size * per_example * self.logits.element_size()

    def train_pass(self, group: list[int], run_index: int) -> Tensor:
        """One SP step of the trials in ``group`` on run ``run_index``: ``[n, 3]`` terms."""
        run, shared, n = self.runs[run_index], self.shared, len(group)
        n_edges = self.patchable.n_edges
        index = None if n == len(self.settings) else self._index(group)
        tiled = self._repeated_run(run_index, n)
        live = self.logits if index is None else self.logits[index]  # [n, n_edges]
        generators = [self.generators[k] for k in group]
        masks = _trial_masks(
            shared["mask_fn"], live, run.batch.size, generators, shared["dropout_p"]
        )  # [n × batch, n_edges]
        out = run.batch.output_logits(
            self.patchable.forward_patched(tiled.tokens, run.patch, masks, tiled.resid_start)
        )  # [n × batch, n_out, vocab]
        faith = (
            faithfulness_loss(shared["faithfulness_target"], out, tiled.clean_logits, tiled.batch)
            .view(n, -1)
            .mean(1)
        )  # [n]
        count = _trial_counts(shared["mask_fn"], live, generators)  # [n]
        size = size_term(count, n_edges, shared["tree_optimisation"], shared["circuit_size"])
        lam = self.regularize_lambda if index is None else self.regularize_lambda[index]
        reg = lam * size
        loss = faith + reg  # [n]: trials share no parameter, so the sum trains each
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(loss.sum(), [self.logits])
        else:  # nothing trains (correct_percent with λ 0)
            grad = torch.zeros_like(self.logits)
        self.optimiser.step(grad, index)
        return torch.stack([loss, faith, reg], 1).detach()

    def _index(self, group: list[int]) -> torch.Tensor:
        """``group`` as a device index, made once (a host-to-device copy waits for the
        device, so not once per step)."""
        key = tuple(group)
        if key not in self._indices:
            self._indices[key] = torch.tensor(group, device=self.logits.device)
        return self._indices[key]

    def _repeated_run(self, run_index: int, n: int) -> _RepeatedRun:
        key = (run_index, n)
        if key not in self._repeated:
            if len(self._repeated) > 2 * len(self.runs):  # group sizes changed: start over
                self._repeated.clear()
            self._repeated[key] = _RepeatedRun(self.runs[run_index], n)
        return self._repeated[key]


class _RepeatedRun:
    """A run's tokens, reference logits and prompts repeated for ``n`` trials (the patch
    is tiled by :meth:`PatchableModel.forward_patched` without a copy)."""

    def __init__(self, run, n: int) -> None:
        self.tokens = run.tokens.repeat(n, 1)  # [n × batch, pos]
        self.clean_logits = run.clean_logits.repeat(n, 1, 1)  # [n × batch, n_out, vocab]
        self.resid_start = run.resid_start  # [batch or 1, pos, d_model] or None
        batch = run.batch
        self.batch = dataclasses.replace(
            batch,
            clean=batch.clean.repeat(n, 1),
            corrupt=batch.corrupt.repeat(n, 1),
            answers=batch.answers.repeat(n, *[1] * (batch.answers.ndim - 1)),
            wrong_answers=batch.wrong_answers.repeat(n, 1, 1),
        )


def _trial_masks(
    mask_fn: str,
    logits: torch.Tensor,
    size: int,
    generators: Sequence[torch.Generator],
    dropout_p: float,
) -> torch.Tensor:
    """Per-example masks of ``n`` trials, ``[n × size, n_edges]``, each trial drawing from
    its own generator in the order SP alone draws (mask noise, then dropout)."""
    n, n_edges = logits.shape
    if mask_fn == "hard_concrete":
        noise = torch.stack([uniform_noise(logits[0], size, g) for g in generators])
        masks = hard_concrete_from_noise(logits[:, None], noise)  # [n, size, n_edges]
    else:
        masks = sample_masks(mask_fn, logits, 1, None)[0][:, None]  # [n, 1, n_edges]
    if dropout_p > 0:
        masks = torch.stack(
            [drop_masks(m, dropout_p, g) for m, g in zip(masks, generators, strict=True)]
        )
    return masks.expand(n, size, n_edges).reshape(n * size, n_edges)


def _trial_counts(
    mask_fn: str, logits: torch.Tensor, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """Each trial's sampled number of edges on, ``[n]`` (one fresh mask sample each)."""
    if mask_fn == "hard_concrete":
        noise = torch.stack([uniform_noise(logits[0], 1, g)[0] for g in generators])
        return hard_concrete_from_noise(logits, noise).sum(-1)
    return sample_masks(mask_fn, logits, 1, None)[0].sum(-1)


class _TrialAdam:
    """Adam on the rows of one ``[K, n_edges]`` tensor, each row with its own learning
    rate and step count (torch.optim.Adam's update, term for term, so a trial follows
    the path it follows alone). Step counts and learning rates live on the parameter's
    device, so a step never waits for the device."""

    BETAS, EPS = (0.9, 0.999), 1e-8

    def __init__(self, param: torch.Tensor, learning_rates: Sequence[float]) -> None:
        self.param = param
        device = param.device
        # [K], float64 like the Python floats torch.optim.Adam computes its corrections in
        self.learning_rates = torch.tensor(learning_rates, dtype=torch.float64, device=device)
        self.steps = torch.zeros(len(learning_rates), dtype=torch.float64, device=device)
        self.exp_avg = torch.zeros_like(param, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(param, requires_grad=False)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, index: torch.Tensor | None) -> None:
        """Update the rows in ``index`` (every row when None) from ``grad`` ``[K, n_edges]``."""
        beta1, beta2 = self.BETAS
        if index is None:
            steps, learning_rates = self.steps.add_(1), self.learning_rates
        else:
            steps, learning_rates = self.steps[index] + 1, self.learning_rates[index]
            self.steps.index_copy_(0, index, steps)
        scale = torch.stack(
            [-learning_rates / (1 - beta1**steps), (1 - beta2**steps).sqrt()], 1
        ).to(self.param.dtype)  # [n, 2]: −step size, sqrt of the second bias correction
        if index is None:
            param, exp_avg, exp_avg_sq = self.param, self.exp_avg, self.exp_avg_sq
        else:
            grad = grad[index]
            param, exp_avg, exp_avg_sq = (t[index] for t in self._tensors())
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / scale[:, 1:]).add_(self.EPS)
        param.add_(scale[:, :1] * exp_avg / denom)
        if index is not None:
            for full, part in zip(self._tensors(), (param, exp_avg, exp_avg_sq), strict=True):
                full.index_copy_(0, index, part)

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.param, self.exp_avg, self.exp_avg_sq
