"""One training loop for everything that trains by epochs over a fixed list of batches.

Subnetwork Probing, its batched form and Edge Pruning train masks the same way: epochs
over the same batches, one optimiser step per batch, a history of per-step terms, a
divergence check and an epoch callback that may stop the training (Optuna's pruning). The
loop owns all of that, plus the wall time, the peak memory and a progress bar; the
algorithm owns its *step*: what one batch computes and how its parameters move.

Several trainings may run together (SP's batched form): each is a *trial* with its own
number of epochs, callback and fate. A step trains any group of the trials still running
and returns one row of terms per trial; a trial that diverges, or that its callback stops,
leaves while the others go on. Terms are read from the device once per epoch.

Example:
    >>> import torch
    >>> weight = torch.zeros((), requires_grad=True)
    >>> optimiser = torch.optim.SGD([weight], lr=0.5)
    >>> def step(epoch: int, batch: int) -> torch.Tensor:
    ...     loss = (weight - 1) ** 2
    ...     optimiser.zero_grad()
    ...     loss.backward()
    ...     optimiser.step()
    ...     return torch.stack([loss, weight]).detach()
    >>> log = train(step, 2, 2, ("loss", "weight"), diverged=lambda k, loss, epoch: ValueError())
    >>> log.histories[0]["loss"], log.histories[0]["weight"]
    ([1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

Batch = TypeVar("Batch", bound=Any)

EpochCallback = Callable[[int, float, float], None]
"""Called after every epoch with ``(epoch, mean loss, mean faithfulness term)``; it may
raise (e.g. ``optuna.TrialPruned``) to stop training."""

TrialsStep = Callable[[int, int, list[int]], Iterable[tuple[Sequence[int], Tensor]]]
"""``(epoch, batch index, trials still running) -> (trials, [n, n_terms] terms)`` pairs:
one optimiser step of those trials on that batch, perhaps in several groups, each group
with its terms (detached, one row per trial of the group)."""

Diverged = Callable[[int, float, int], BaseException]
"""``(trial, mean loss, epoch) -> the error`` that stops a trial whose mean epoch loss is
not finite."""


@dataclass(frozen=True)
class Progress:
    """A progress bar over the epochs.

    Attributes:
        description: Its label.
        faithfulness: If given, the label of the mean faithfulness term shown with the
            mean loss after each epoch (of the one trial).
    """

    description: str
    faithfulness: str | None = None


@dataclass(frozen=True)
class TrainingLog:
    """What a training leaves.

    Attributes:
        histories: Per trial, each term's value at every step it trained.
        errors: Per trial, what stopped it (its divergence error or its callback's
            exception), or ``None`` if it trained all its epochs.
        seconds: Wall time of the loop.
        peak_memory_mb: Peak memory at its end, see :func:`peak_memory`.
        peak_memory_kind: What was measured, see :func:`peak_memory`.
    """

    histories: list[dict[str, list[float]]]
    errors: list[BaseException | None]
    seconds: float
    peak_memory_mb: float
    peak_memory_kind: str


def train_trials(
    step: TrialsStep,
    n_batches: int,
    epochs: Sequence[int],
    terms: Sequence[str],
    *,
    diverged: Diverged,
    callbacks: Sequence[EpochCallback | None] | None = None,
    progress: Progress | None = None,
    device: torch.device | str = "cpu",
) -> TrainingLog:
    """Train ``len(epochs)`` trials together, ``epochs[k]`` epochs of ``n_batches`` steps
    for trial ``k``.

    Args:
        step: See :data:`TrialsStep`.
        n_batches: Steps per epoch; the step's batch index runs over ``range(n_batches)``.
        epochs: Per trial, its number of epochs.
        terms: The names of the step's columns: the first is the loss (checked for
            divergence), the second the faithfulness term; callbacks get their epoch means.
        diverged: See :data:`Diverged`.
        callbacks: Per trial, its :data:`EpochCallback` or ``None``; an exception it
            raises stops that trial only.
        progress: A progress bar, or ``None``.
        device: Where the training runs (for the peak memory).

    Returns:
        The :class:`TrainingLog`; errors are returned, not raised.
    """
    n = len(epochs)
    callbacks = list(callbacks) if callbacks is not None else [None] * n
    histories: list[dict[str, list[float]]] = [{term: [] for term in terms} for _ in range(n)]
    errors: list[BaseException | None] = [None] * n
    start = time.perf_counter()
    bar = _bar(max(epochs, default=0), progress)
    try:
        for epoch in bar:
            active = [k for k in range(n) if errors[k] is None and epoch < epochs[k]]
            if not active:
                break
            done = [pair for batch in range(n_batches) for pair in step(epoch, batch, active)]
            values = torch.cat([rows for _, rows in done]).tolist()  # one device sync per epoch
            rows_of: dict[int, list[list[float]]] = {k: [] for k in active}
            for k, row in zip((k for group, _ in done for k in group), values, strict=True):
                rows_of[k].append(row)
            for k in active:
                columns = [list(column) for column in zip(*rows_of[k], strict=True)]
                for term, column in zip(terms, columns, strict=True):
                    histories[k][term] += column
                mean_loss = sum(columns[0]) / len(columns[0])
                mean_faith = sum(columns[1]) / len(columns[1]) if len(columns) > 1 else math.nan
                if not math.isfinite(mean_loss):
                    errors[k] = diverged(k, mean_loss, epoch)
                    continue
                if progress is not None and progress.faithfulness is not None and n == 1:
                    bar.set_postfix(
                        {"loss": f"{mean_loss:.4g}", progress.faithfulness: f"{mean_faith:.4g}"}
                    )
                if callbacks[k] is not None:
                    try:
                        callbacks[k](epoch, mean_loss, mean_faith)
                    except Exception as error:  # e.g. optuna.TrialPruned: this trial stops
                        errors[k] = error
    finally:
        if progress is not None:
            bar.close()
    seconds = time.perf_counter() - start
    return TrainingLog(histories, errors, seconds, *peak_memory(device))


def train(
    step: Callable[[int, int], Tensor],
    n_batches: int,
    epochs: int,
    terms: Sequence[str],
    *,
    diverged: Diverged,
    callback: EpochCallback | None = None,
    progress: Progress | None = None,
    device: torch.device | str = "cpu",
) -> TrainingLog:
    """One training (:func:`train_trials` with one trial), raising what stops it.

    ``step(epoch, batch index)`` takes one optimiser step and returns its terms,
    ``[n_terms]`` (detached).
    """
    log = train_trials(
        lambda epoch, batch, trials: [(trials, step(epoch, batch)[None])],
        n_batches,
        [int(epochs)],
        terms,
        diverged=diverged,
        callbacks=[callback],
        progress=progress,
        device=device,
    )
    if log.errors[0] is not None:
        raise log.errors[0]
    return log


def peak_memory(device: torch.device | str) -> tuple[float, str]:
    """``(MiB, kind)``: on a GPU, CUDA's peak allocation since its last reset
    (``cuda_max_allocated``; the loop does not reset it, its caller may); else the
    process's maximum resident set size (``process_max_rss``).

    Example:
        >>> mib, kind = peak_memory("cpu")
        >>> mib > 0, kind
        (True, 'process_max_rss')
    """
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def _bar(epochs: int, progress: Progress | None) -> Iterable[int]:
    if progress is None:
        return range(epochs)
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc=progress.description, leave=False)


def on_device(dataloader: Iterable[Batch], device: torch.device | str, name: str) -> list[Batch]:
    """Every batch of ``dataloader`` on ``device``; at least one, or a ValueError that
    says what (``name``) needs it.

    Example:
        >>> on_device([], "cpu", "SP")
        Traceback (most recent call last):
        ...
        ValueError: dataloader is empty: SP needs at least one batch
    """
    batches = [b.to(device) for b in dataloader]
    if not batches:
        raise ValueError(f"dataloader is empty: {name} needs at least one batch")
    return batches
