"""The Task and TaskSpec types, and the checks of a task's options and metrics.

A task bundles a model, train and test batches and one or more official circuits
("ground truths"), each a set of edge names in the graph convention of
:mod:`harness.engine.graph`. Loaders live in the sibling modules and describe each task
with a :class:`TaskSpec` (registered in :mod:`harness.tasks.registry`);
``harness.tasks.load`` validates every official edge set against the model's graph
before returning.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from harness.engine.batches import PromptBatch
from harness.engine.device import resolve_device
from harness.engine.patching import PatchableModel
from harness.util.did_you_mean import did_you_mean
from harness.util.seeds import check_seed


@dataclass
class Task:
    """A benchmark task with known circuits.

    Attributes:
        slug: The registry name, e.g. ``"tracr-reverse"``.
        model: The ``HookedTransformer``.
        train: Batches SP and the baselines learn from.
        test: Held-out batches for faithfulness.
        validation: Batches to tune hyperparameters on, never sharing a clean prompt
            with ``test`` (empty for tasks without one: the GPT-2 tasks).
        circuits: Ground-truth name -> official edge names.
        default_ground_truth: The ground truth used when none is named.
        faithfulness_target: The SP faithfulness target that suits the task's output
            (``"mse"`` for a numerical output, ``"kl_div"`` otherwise).
        separate_qkv: The graph the official edges are written in.
        info: Provenance and dataset facts, for records.
        aliases: Other names of ground truths (alias -> name in ``circuits``): accepted
            wherever a ground truth is named, never scored twice.
    """

    slug: str
    model: Any
    train: tuple[PromptBatch, ...]
    test: tuple[PromptBatch, ...]
    circuits: dict[str, frozenset[str]]
    default_ground_truth: str
    faithfulness_target: str = "kl_div"
    separate_qkv: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    validation: tuple[PromptBatch, ...] = ()

    @property
    def ground_truths(self) -> tuple[str, ...]:
        return tuple(self.circuits)

    def official_edges(self, ground_truth: str | None = None) -> frozenset[str]:
        """The edges of a ground truth (the task's default when ``None``)."""
        name = self.default_ground_truth if ground_truth is None else ground_truth
        name = self.aliases.get(name, name)
        if name not in self.circuits:
            raise ValueError(
                f"task {self.slug!r} has no ground truth {name!r} "
                f"(it has: {', '.join(self.circuits)})"
            )
        return self.circuits[name]

    @cached_property
    def patchable(self) -> PatchableModel:
        return PatchableModel.wrap(self.model, separate_qkv=self.separate_qkv)

    def validate(self) -> None:
        """Every official edge must be an edge of the model's graph."""
        graph = self.patchable.graph
        for name, edges in self.circuits.items():
            missing = sorted(e for e in edges if e not in graph)
            if missing:
                raise ValueError(
                    f"ground truth {name!r} of task {self.slug!r} has {len(missing)} edges not "
                    f"in the model's graph, e.g. {missing[0]!r}"
                )


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
        slug: Its name in configs and on the command line.
        label: The name printed in tables and figures.
        loader: ``(**options) -> Task``.
        ground_truths: The names of its official circuits, default first.
        needs_weights: Whether it needs pretrained weights (hub or local directory).
        description: One line for ``harness ls tasks``.
        numerical_output: The model's output is one number (regression), not a
            distribution over tokens: KL is degenerate and answer-based metrics undefined.
        summary: ``() -> dict`` with ``layers``, ``heads``, ``edges``, ``circuits``
            (ground truth -> edge count) read without loading the task, for
            ``harness ls tasks``; ``None`` where unknown before loading.
        check_options: ``(options) -> None``: a one-line ValueError for option values
            the task cannot take (sizes its data cannot give), checked before loading.
    """

    slug: str
    label: str
    loader: Callable[..., Task]
    ground_truths: tuple[str, ...]
    needs_weights: bool
    description: str
    numerical_output: bool = False
    ground_truth_aliases: tuple[str, ...] = ()  # other names its ground truths answer to
    summary: Callable[[], dict[str, Any]] | None = None
    check_options: Callable[[dict[str, Any]], None] | None = None


# Metric names (algorithm parameters) that need a distribution over tokens or answer ids.
_CATEGORICAL_METRICS = {
    "kl_div",
    "correct_percent",
    "logit_diff_percent",
    "answer",
    "wrong_answer",
    "logit_diff",
}
_METRIC_PARAMETERS = ("metric", "faithfulness_target")


def check_metric_supported(spec: TaskSpec, params: dict[str, Any]) -> None:
    """A ValueError if a metric parameter names a metric the task's output cannot give."""
    for name in _METRIC_PARAMETERS:
        value = params.get(name)
        if spec.numerical_output and value in _CATEGORICAL_METRICS:
            raise ValueError(
                f"{name} {value!r} is not supported by task {spec.slug!r}: its output is one "
                "number, use 'mse'"
            )


def check_task_options(
    spec: TaskSpec, options: dict[str, Any], where: str = "task_options"
) -> None:
    """A one-line ValueError for an option the task's loader does not take, or a device
    torch does not have, before anything is loaded.

    Example:
        >>> from harness.tasks import get_task_spec
        >>> check_task_options(get_task_spec("tracr-reverse"), {"seeed": 1})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: task_options: task 'tracr-reverse' takes no option 'seeed' ...
    """
    parameters = inspect.signature(spec.loader).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        for name in options:
            if name not in parameters:
                hint = did_you_mean(name, parameters)
                raise ValueError(
                    f"{where}: task {spec.slug!r} takes no option {name!r} "
                    f"(it takes: {', '.join(parameters)}){hint}"
                )
    if spec.check_options is not None:
        try:
            spec.check_options(options)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if "seed" in options:  # the data's seed: NumPy and torch take it below 2**31
        check_seed(options["seed"], f"{where}: seed")
    if options.get("device") is not None:
        try:
            resolve_device(options["device"])
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
