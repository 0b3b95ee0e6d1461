"""Comparison configs (``kind: compare``, ``harness compare``): methods × tasks × ablations ×
seeds; see :mod:`harness.benchmark.compare` for what a comparison runs.

Example:
    >>> config = CompareConfig.model_validate({"kind": "compare", "name": "c",
    ...     "tasks": "tracr-reverse", "methods": {"sp": {"sweep": {"regularize_lambda": [1, 10]}}}})
    >>> config.tasks, config.seeds, config.methods["sp"].sweep
    (['tracr-reverse'], [0], {'regularize_lambda': [1, 10]})
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from harness.configs.base import (
    CONFIG_VERSION,
    NAME_PATTERN,
    ConfigName,
    DistinctSeeds,
    StrictModel,
    TaskNames,
    read_mapping,
    validate_model,
)
from harness.configs.figure import FigureConfig
from harness.tasks import expand_tasks


class MethodConfig(StrictModel):
    """How one method runs in a comparison.

    Attributes:
        params: Fixed parameters (a ``{task: {...}}`` mapping under ``per_task`` overrides
            them for one task).
        per_task: Task -> parameters that override ``params`` on that task.
        sweep: One parameter and its values, run once each for the sweep-based ROC
            (SP's λ sweep); ACDC sweeps thresholds internally.
        from_study: Take the parameters of the best trial of this study (``{task}`` is
            replaced by the task's name), read from its records.
        algorithm: The registered method this entry runs, where its name is a label of
            its own (``sp-tuned: {algorithm: sp, params: {...}}`` beside ``sp``); default:
            the entry's name.
    """

    params: dict[str, Any] = Field(default_factory=dict)
    per_task: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    from_study: str | None = None
    algorithm: str | None = None

    @field_validator("from_study")
    @classmethod
    def _a_study_name(cls, value: str | None) -> str | None:
        """A study name, where ``{task}`` may stand for the task's (never a path, nor another
        ``{...}``: ``"{0}"`` raised IndexError after the comparison had started)."""
        if value is not None and not re.fullmatch(NAME_PATTERN, value.replace("{task}", "t")):
            raise ValueError(
                f"a study name (letters, digits, _.-), where {{task}} stands for the task's "
                f"name; got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_sweep(self) -> MethodConfig:
        if len(self.sweep) > 1:
            raise ValueError("a method sweeps at most one parameter")
        for name, values in self.sweep.items():
            if not values:
                raise ValueError(f"the sweep over {name!r} is empty")
        return self


class CompareConfig(StrictModel):
    """A comparison of methods across tasks, ground truths, ablations and seeds."""

    version: int = CONFIG_VERSION
    kind: str = Field(pattern="^compare$")
    name: ConfigName
    description: str = ""
    tasks: TaskNames = Field(min_length=1)  # task names and named suites (``tracr-suite``)
    task_options: dict[str, Any] = Field(default_factory=dict)
    ablations: list[str] = Field(default_factory=lambda: ["resample"], min_length=1)
    seeds: DistinctSeeds = Field(default_factory=lambda: [0], min_length=1)
    methods: dict[str, MethodConfig] = Field(min_length=1)
    bootstrap_samples: int = Field(default=10000, ge=100)
    figure: FigureConfig = Field(default_factory=FigureConfig, exclude=True)  # no result
    jobs: int = Field(default=1, ge=1)  # worker processes for the cells (--jobs overrides)


def load_compare_config(path: Path | str, overrides: dict[str, Any] | None = None) -> CompareConfig:
    """Read and validate a comparison YAML (one-line ValueError on problems)."""
    data = read_mapping(path, "comparison config", overrides)
    if "kind" not in data and ("task" in data or "search_space" in data):
        raise ValueError(f"{path}: a study config, not a comparison: run `harness run {path}`")
    config = validate_model(CompareConfig, data, str(path))
    return config.model_copy(update={"tasks": expand_tasks(config.tasks)})
