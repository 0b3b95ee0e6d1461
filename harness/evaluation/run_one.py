"""Run one algorithm once on a task and score it against every ground truth."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.algorithms import AlgorithmSpec, get_algorithm
from harness.algorithms.params import check_seed, check_values
from harness.engine.prune_scores import PruneScores
from harness.evaluation.roc import RocCurve, score_roc
from harness.tasks import Task
from harness.util.did_you_mean import did_you_mean

# Arguments every algorithm receives positionally, never from a config.
_POSITIONAL = ("model", "dataloader", "official_edges")
# Keyword arguments the runner supplies itself.
_NOT_HYPERPARAMETERS = ("callback", "progress", "validation_dataloader", "seed")


def algorithm_parameters(spec: AlgorithmSpec) -> dict[str, Any]:
    """The hyperparameters an algorithm takes, with their defaults.

    Example:
        >>> from harness.algorithms import get_algorithm
        >>> algorithm_parameters(get_algorithm("sp"))["epochs"]
        20
    """
    signature = inspect.signature(spec.function)
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if name not in _POSITIONAL and name not in _NOT_HYPERPARAMETERS
    }


def check_parameters(
    spec: AlgorithmSpec, params: Mapping[str, Any], values: bool = True, where: str = ""
) -> None:
    """A ValueError naming the first parameter the algorithm does not take, or (with
    ``values``) the first value outside the parameter's type and range.

    Example:
        >>> from harness.algorithms import get_algorithm
        >>> check_parameters(get_algorithm("sp"), {"epochs": 0})
        Traceback (most recent call last):
        ...
        ValueError: sp parameter epochs must be an integer >= 1, got 0
    """
    known = algorithm_parameters(spec)
    for name in params:
        if name not in known:
            hint = did_you_mean(name, known)
            raise ValueError(
                f"{where}algorithm {spec.slug!r} takes no parameter {name!r} "
                f"(it takes: {', '.join(known) or 'none'}){hint}"
            )
    if values:
        check_values(spec.slug, params, where)


@dataclass(frozen=True)
class RunResult:
    """One algorithm run on a task.

    Attributes:
        scores: The per-edge scores.
        seconds: Wall time of the algorithm (data preparation included).
        rocs: Score-based ROC curve against each ground truth of the task.
        peak_memory_mb: Peak memory while it ran, in MiB (see ``peak_memory_kind``).
        peak_memory_kind: ``cuda_max_allocated`` (the run's own peak on the GPU) or
            ``process_max_rss`` (the process's resident-set high-water mark so far: an
            upper bound of the run's own on the CPU).
    """

    scores: PruneScores
    seconds: float
    rocs: dict[str, RocCurve]
    peak_memory_mb: float | None = None
    peak_memory_kind: str | None = None

    @property
    def aucs(self) -> dict[str, float]:
        return {name: roc.auc for name, roc in self.rocs.items()}


def run_algorithm(
    task: Task,
    algorithm: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    ground_truth: str | None = None,
    callback: Callable[[int, float, float], None] | None = None,
) -> RunResult:
    """Run ``algorithm`` on ``task.train`` with ``params`` and score it.

    SP gets the task's faithfulness target unless ``params`` names one.

    Example:
        >>> from harness.tasks import load
        >>> task = load("tracr-reverse", device="cpu")
        >>> run_algorithm(task, "oracle").aucs
        {'resample': 1.0, 'acdc-zero': 0.6}
    """
    spec = get_algorithm(algorithm)
    params = dict(params or {})
    check_parameters(spec, params)
    check_seed(seed)
    accepted = algorithm_parameters(spec)
    if "faithfulness_target" in accepted:
        params.setdefault("faithfulness_target", task.faithfulness_target)
    if accepted.get("metric") == "kl_div" and task.train[0].is_regression:
        params.setdefault("metric", "mse")  # KL of a single numerical output is always 0
    extra: dict[str, Any] = {}
    signature = inspect.signature(spec.function).parameters
    if "seed" in signature:
        extra["seed"] = seed
    if callback is not None and "callback" in signature:
        extra["callback"] = callback
    if "progress" in signature:
        extra["progress"] = False
    official = task.official_edges(ground_truth)
    device = task.patchable.device
    _reset_peak_memory(device)
    start = time.perf_counter()
    scores = spec.function(task.patchable, task.train, official, **params, **extra)
    seconds = time.perf_counter() - start
    peak, kind = peak_memory(device)
    return RunResult(scores, seconds, evaluate_scores(task, scores), peak, kind)


def _reset_peak_memory(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device) -> tuple[float, str]:
    """``(MiB, kind)``: CUDA's peak allocation since the last reset on a GPU, else the
    process's maximum resident set size.

    Example:
        >>> mib, kind = peak_memory("cpu")
        >>> mib > 0, kind
        (True, 'process_max_rss')
    """
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_max_rss"


def evaluate_scores(task: Task, scores: PruneScores) -> dict[str, RocCurve]:
    """Score-based ROC (trapezoid AUC) of ``scores`` against every ground truth."""
    return {name: score_roc(scores, task.official_edges(name)) for name in task.ground_truths}
