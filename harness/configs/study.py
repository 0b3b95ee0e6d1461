"""Study configs (``harness run``): pure data, validated with pydantic, unknown keys refused.

Example:
    >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse",
    ...     "search_space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1.0,
    ...                                        "log": True}}})
    >>> config.storage_url()
    'sqlite:///runs/s/study.db'
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from harness.configs.base import (
    CONFIG_VERSION,
    ConfigName,
    StrictModel,
    read_mapping,
    validate_model,
)
from harness.configs.figure import FigureConfig
from harness.tasks import expand_tasks


class FloatRange(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("a float range cannot have both log: true and a step")
        if self.step is not None and not (math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be a finite number > 0, got {self.step}")
        return self


class IntRange(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log)
        if self.step < 1:
            raise ValueError(f"step must be an integer >= 1, got {self.step}")
        if self.log and self.step != 1:
            raise ValueError("an int range cannot have both log: true and a step")
        return self


class Categorical(StrictModel):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)


Distribution = Annotated[FloatRange | IntRange | Categorical, Field(discriminator="type")]


def _check_range(low: float, high: float, log: bool) -> None:
    for name, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    if low > high:
        raise ValueError(f"low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")


class Objective(StrictModel):
    """What a study optimises.

    ``roc_auc``: score-based AUC against the study's ground truth (maximise).
    ``faithfulness``: the KL divergence of the top-``k`` circuit to the full model on the
    test batches (MSE for tasks with a numerical output; minimise), which needs no ground
    truth. ``cpr`` (maximise) and ``cmd`` (minimise): MIB's areas of faithfulness over
    circuit sizes on the test batches (:mod:`harness.evaluation.mib`; edges ranked by signed
    and by absolute score), which need no ground truth either; ``min_size`` (minimise): the
    smallest of MIB's circuit sizes (fraction of edges, absolute ranking) whose normalised
    faithfulness reaches ``target`` (1.0 when none does). ``circuit_size`` may be added
    as a second objective (``multi: true``): the number of edges in the circuit at the
    threshold of the deterministic masks, giving a Pareto front.
    """

    metric: Literal["roc_auc", "faithfulness", "cpr", "cmd", "min_size"] = "roc_auc"
    k: int = Field(default=10, ge=1)
    multi: bool = False
    target: float = Field(default=0.9, gt=0.0, le=1.0)  # min_size's faithfulness target

    @property
    def maximize(self) -> bool:
        """Whether the first objective is maximised (``roc_auc``, ``cpr``).

        Example:
            >>> Objective(metric="cmd").maximize, Objective(metric="cpr").maximize
            (False, True)
        """
        return self.metric in ("roc_auc", "cpr")


class Sampler(StrictModel):
    type: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    multivariate: bool = True
    constant_liar: bool = False
    n_startup_trials: int = Field(default=10, ge=0)


class Pruner(StrictModel):
    type: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(default=5, ge=0)
    n_warmup_steps: int = Field(default=5, ge=0)


class Wandb(StrictModel):
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "circuit-harness"
    entity: str | None = None


class Heldout(StrictModel):
    """Held-out evaluation after the search (see :mod:`harness.study.heldout`): the best
    trial's parameters run again on ``seeds`` seeds the search never used, faithfulness
    on the test split. 0 turns it off (as ``harness run --no-heldout`` does)."""

    seeds: int = Field(default=5, ge=0, le=1000)


class StudyConfig(StrictModel):
    """One study: a task, an algorithm, a search space and how to search it."""

    version: int = CONFIG_VERSION
    name: ConfigName
    description: str = ""
    task: str | list[str] = Field(min_length=1)  # a task, a named suite, or a list of both
    task_options: dict[str, Any] = Field(default_factory=dict)
    aggregate: Literal["mean", "worst"] = "mean"  # over the tasks of a multi-task study
    ground_truth: str | None = None
    algorithm: str = "sp"
    params: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, Distribution] = Field(default_factory=dict)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    objective: Objective = Objective()
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    n_trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)  # params.SEED_MAX: seed + trial number
    storage: str | None = None
    wandb: Wandb = Wandb()
    heldout: Heldout = Heldout()
    figure: FigureConfig = Field(default_factory=FigureConfig, exclude=True)  # no result

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        if self.version != CONFIG_VERSION:
            raise ValueError(
                f"config version {self.version} is not supported (this is {CONFIG_VERSION})"
            )
        both = set(self.params) & set(self.search_space)
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both fixed in params and searched")
        if self.sampler.type == "grid":
            not_grid = [k for k, d in self.search_space.items() if not isinstance(d, Categorical)]
            if not_grid:
                raise ValueError(
                    f"the grid sampler needs categorical choices; {not_grid[0]!r} is a range"
                )
        return self

    def task_names(self) -> list[str]:
        """The tasks a trial runs on: ``task`` with suites expanded, each once.

        Example:
            >>> config = StudyConfig.model_validate(
            ...     {"name": "s", "task": ["tracr-reverse", "tracr-proportion"]})
            >>> config.task_names(), config.task_label
            (['tracr-reverse', 'tracr-proportion'], 'tracr-reverse+tracr-proportion')
        """
        return expand_tasks([self.task] if isinstance(self.task, str) else list(self.task))

    @property
    def task_label(self) -> str:
        """What records and tables call the study's task(s): the name, or names joined
        with ``+`` (a suite keeps its name)."""
        return self.task if isinstance(self.task, str) else "+".join(self.task)

    def storage_url(self, root: Path | str = "runs") -> str:
        """The storage URL, defaulting to ``sqlite:///<root>/<name>/study.db``."""
        if self.storage:
            return self.storage
        path = Path(root) / self.name / "study.db"
        return f"sqlite:///{path}" if not path.is_absolute() else f"sqlite:////{str(path)[1:]}"

    def config_hash(self) -> str:
        """A short hash of what the search depends on (storage, W&B and held-out
        settings excluded)."""
        data = self.model_dump(mode="json", exclude={"storage", "wandb", "heldout"})
        if data["aggregate"] == "mean":  # keys added later hash as before at their default
            del data["aggregate"]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a study YAML, apply ``--set`` overrides and validate it.

    Raises:
        ValueError: One line naming the problem (malformed YAML, unknown key, wrong type,
            bad range...).
    """
    data = read_mapping(path, "study config", overrides)
    if data.get("kind") == "compare":
        raise ValueError(f"{path}: a comparison config: run `harness compare {path}`")
    return validate_config(data, source=str(path))


def validate_config(data: dict[str, Any], source: str = "config") -> StudyConfig:
    """Validate a study config mapping; one-line ValueError on the first problem."""
    return validate_model(StudyConfig, data, source)
