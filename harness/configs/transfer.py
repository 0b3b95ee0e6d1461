"""Transfer configs (``kind: transfer``, ``harness transfer``): tune SP on train tasks, score
it on disjoint test tasks; see :mod:`harness.benchmark.transfer` for what a transfer runs.

Example:
    >>> config = TransferConfig.model_validate({"kind": "transfer", "name": "t",
    ...     "train_tasks": ["tracr-reverse"], "test_tasks": ["tracr-proportion"],
    ...     "search_space": {"regularize_lambda": {"type": "float", "low": 0.1, "high": 10}}})
    >>> config.seeds, config.objective.metric
    ([0, 1, 2], 'faithfulness')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.configs.base import (
    CONFIG_VERSION,
    ConfigName,
    DistinctSeeds,
    StrictModel,
    TaskNames,
    read_mapping,
    validate_model,
)
from harness.configs.figure import FigureConfig
from harness.configs.study import Distribution, Objective, Pruner, Sampler
from harness.tasks import expand_tasks


class TransferConfig(StrictModel):
    """Tune on train tasks, score on disjoint test tasks (see the module docstring)."""

    version: int = CONFIG_VERSION
    kind: str = Field(pattern="^transfer$")
    name: ConfigName
    description: str = ""
    train_tasks: TaskNames = Field(default_factory=list)
    test_tasks: TaskNames = Field(default_factory=list)
    folds: int | None = Field(default=None, ge=2)
    task_options: dict[str, Any] = Field(default_factory=dict)
    ablation: str = "resample"
    params: dict[str, Any] = Field(default_factory=dict)  # SP's fixed parameters
    search_space: dict[str, Distribution] = Field(min_length=1)
    objective: Objective = Objective(metric="faithfulness")
    aggregate: Literal["mean", "worst"] = "mean"
    n_trials: int = Field(default=20, ge=1)
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner(type="none")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    seeds: DistinctSeeds = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    baselines: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"acdc": {}, "eap": {}, "random": {}}
    )
    oracle: bool = False
    bootstrap_samples: int = Field(default=10000, ge=100)
    figure: FigureConfig = Field(default_factory=FigureConfig, exclude=True)  # no result
    jobs: int = Field(default=1, ge=1)  # worker processes for the cells (--jobs overrides)

    @model_validator(mode="after")
    def _split(self) -> TransferConfig:
        if self.folds is None and (not self.train_tasks or not self.test_tasks):
            raise ValueError("give train_tasks and test_tasks, or tasks to split with folds")
        if self.folds is not None and self.test_tasks:
            raise ValueError("with folds, list the tasks under train_tasks only")
        return self


def load_transfer_config(path: Path | str, overrides: dict[str, Any] | None = None):
    """Read and validate a transfer YAML; suites expanded; one-line ValueError."""
    data = read_mapping(path, "transfer config", overrides)
    config = validate_model(TransferConfig, data, str(path))
    train, test = expand_tasks(config.train_tasks), expand_tasks(config.test_tasks)
    shared = sorted(set(train) & set(test))
    if shared:
        raise ValueError(f"{path}: {shared[0]!r} is both a train and a test task")
    if config.folds is not None and config.folds > len(train):
        raise ValueError(f"{path}: {config.folds} folds need at least {config.folds} tasks")
    return config.model_copy(update={"train_tasks": train, "test_tasks": test})
