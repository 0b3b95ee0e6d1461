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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from harness.algorithms.subnetwork_probing import (
    _finish,
    _prepare_runs,
    diverged,
    initial_logit,
    sp_mode,
)
from harness.engine.ablation import check_ablation
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import check_faithfulness_target, faithfulness_loss
from harness.engine.masks import (
    INIT_LOGIT,
    check_mask_fn,
    drop_masks,
    hard_concrete_from_noise,
    sample_masks,
    uniform_noise,
)
from harness.engine.patching import PatchableModel, frozen_weights
from harness.engine.prune_scores import PruneScores

PER_TRIAL = ("learning_rate", "regularize_lambda", "init_val", "epochs", "seed")
DEFAULT_PASS_BYTES = {"cpu": 128 * 2**20, "cuda": 4 * 2**30}
"""Patch-buffer bytes per pass, by device type (others: the CUDA value). The buffer is
``[trials × batch, n_sources, pos, d_model]``; backward holds a second one as large."""
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
    ablation: str = "mean",
    restore_clean: bool = False,
    callbacks: Sequence[Callable[[int, float, float], None] | None] | None = None,
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
    mask_fn = check_mask_fn(mask_fn)
    check_faithfulness_target(faithfulness_target)
    check_ablation(ablation)
    mode = sp_mode(tree_optimisation, restore_clean, ablation)
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
        training = _BatchedTraining(
            patchable,
            _prepare_runs(patchable, batches, ablation, mode),
            settings,
            mask_fn=mask_fn,
            dropout_p=dropout_p,
            circuit_size=circuit_size,
            tree_optimisation=tree_optimisation,
            faithfulness_target=faithfulness_target,
        )
        limit = max_pass_bytes or DEFAULT_PASS_BYTES.get(
            patchable.device.type, DEFAULT_PASS_BYTES["cuda"]
        )
        histories = [{"loss": [], "faithfulness": [], "regularisation": []} for _ in settings]
        for epoch in range(max(int(s["epochs"]) for s in settings)):
            active = [
                k for k, s in enumerate(settings) if results[k] is None and epoch < int(s["epochs"])
            ]
            if not active:
                break
            passes = []  # (trials, [n, 3]: loss, faithfulness, regularisation), step by step
            for i, run in enumerate(training.runs):
                for group in _passes(active, training.trial_bytes(run), limit):
                    passes.append((group, training.train_pass(group, i)))
            values = torch.cat([terms for _, terms in passes]).tolist()  # one sync per epoch
            rows: dict[int, list[list[float]]] = {k: [] for k in active}
            for k, row in zip((k for group, _ in passes for k in group), values, strict=True):
                rows[k].append(row)
            for k in active:
                loss, faith, reg = (list(column) for column in zip(*rows[k], strict=True))
                histories[k]["loss"] += loss
                histories[k]["faithfulness"] += faith
                histories[k]["regularisation"] += reg
                mean_loss = sum(loss) / len(loss)
                if not math.isfinite(mean_loss):  # as SP alone: this trial fails, not the rest
                    results[k] = diverged(mean_loss, epoch, settings[k]["learning_rate"])
                elif callbacks[k] is not None:
                    try:
                        callbacks[k](epoch, mean_loss, sum(faith) / len(faith))
                    except Exception as error:  # e.g. optuna.TrialPruned: this trial stops
                        results[k] = error
    for k in range(len(settings)):
        if results[k] is None:
            results[k] = _finish(
                patchable,
                training.logits[k].detach().clone(),
                mask_fn,
                mode,
                {**histories[k], "val_mean": [], "val_std": []},
                None,
            )
    return results  # type: ignore[return-value]


def _passes(active: list[int], trial_bytes: int, limit: int) -> list[list[int]]:
    """``active`` cut into groups whose patch buffers fit in ``limit`` bytes (at least one
    trial per group)."""
    per_pass = max(1, limit // max(trial_bytes, 1))
    return [active[i : i + per_pass] for i in range(0, len(active), per_pass)]


class _BatchedTraining:
    """The state of K trials training together: their logits ``[K, n_edges]``, optimiser
    and generators, and one training step for any group of them on one batch."""

    def __init__(self, patchable, runs, settings, **shared) -> None:
        self.patchable, self.runs, self.settings, self.shared = patchable, runs, settings, shared
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

    def trial_bytes(self, run) -> int:
        """Bytes of one trial's share of the patch buffer on ``run``."""
        graph, cfg = self.patchable.graph, self.patchable.model.cfg
        per_example = graph.n_sources * run.tokens.shape[1] * cfg.d_model
        return run.batch.size * per_example * self.logits.element_size()

    def train_pass(self, group: list[int], run_index: int) -> torch.Tensor:
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
        if shared["tree_optimisation"]:
            count = n_edges - count
        circuit_size = shared["circuit_size"]
        if circuit_size is not None:
            size_term = torch.relu(count - circuit_size) / circuit_size
        else:
            size_term = count / n_edges
        lam = self.regularize_lambda if index is None else self.regularize_lambda[index]
        reg = lam * size_term
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
