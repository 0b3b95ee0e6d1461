"""Run one algorithm once on a task and score it against every ground truth."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.algorithms import AlgorithmSpec, get_algorithm
from harness.algorithms.params import check_seed, check_values
from harness.hints import did_you_mean
from harness.metrics import RocCurve, score_roc
from harness.prune_scores import PruneScores
from harness.tasks import Task

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
    """

    scores: PruneScores
    seconds: float
    rocs: dict[str, RocCurve]

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
    start = time.perf_counter()
    scores = spec.function(task.patchable, task.train, official, **params, **extra)
    seconds = time.perf_counter() - start
    return RunResult(scores, seconds, evaluate_scores(task, scores))


def evaluate_scores(task: Task, scores: PruneScores) -> dict[str, RocCurve]:
    """Score-based ROC (trapezoid AUC) of ``scores`` against every ground truth."""
    return {name: score_roc(scores, task.official_edges(name)) for name in task.ground_truths}
