"""Study configs: pure data, validated with pydantic, unknown keys refused.

Precedence: the algorithm's defaults < the YAML file < ``--set key=value`` overrides.
Dotted keys reach into nested fields (``--set sampler.type=random``,
``--set params.epochs=50``).

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
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

CONFIG_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """pydantic reads ``true`` as 1 for an int or float field (``n_trials: true`` ran
        one trial): refused."""
        for name, value in data.items() if isinstance(data, dict) else ():
            field = cls.model_fields.get(name)
            if field is None:
                continue
            if isinstance(value, bool) and _numbers_only(field.annotation):
                raise ValueError(f"{name}: a number, not {str(value).lower()}")
            listed = get_origin(field.annotation) is list and isinstance(value, list)
            if listed and _numbers_only(get_args(field.annotation)[0]):
                for item in value:
                    if isinstance(item, bool):
                        raise ValueError(f"{name}: numbers, not {str(item).lower()}")
        return data


def _numbers_only(annotation: Any) -> bool:
    """``int``, ``float``, or a union of them with ``None``."""
    if get_origin(annotation) is list:
        return False
    kinds = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    return all(kind in (int, float) for kind in kinds)


def one_name_is_a_list(value: Any) -> Any:
    """``"tracr-reverse"`` is read as ``["tracr-reverse"]``; anything else as it is."""
    return [value] if isinstance(value, str) else value


def no_repeats(values: list[Any]) -> list[Any]:
    """``values`` unchanged; a ValueError naming the first value given twice.

    Example:
        >>> no_repeats([0, 1, 0])
        Traceback (most recent call last):
        ...
        ValueError: 0 is given twice
    """
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is given twice")
        seen.add(value)
    return values


TaskNames = Annotated[list[str], BeforeValidator(one_name_is_a_list)]
"""Task names (and named suites) of a comparison or transfer config; one name may stand
alone."""

DistinctSeeds = Annotated[list[int], AfterValidator(no_repeats)]
"""Seeds of a comparison or transfer config: a repeated seed would count one run twice."""


class FloatRange(_Strict):
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


class IntRange(_Strict):
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


class Categorical(_Strict):
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


class Objective(_Strict):
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


class Sampler(_Strict):
    type: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    multivariate: bool = True
    constant_liar: bool = False
    n_startup_trials: int = Field(default=10, ge=0)


class Pruner(_Strict):
    type: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(default=5, ge=0)
    n_warmup_steps: int = Field(default=5, ge=0)


class Wandb(_Strict):
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "circuit-harness"
    entity: str | None = None


class Heldout(_Strict):
    """Held-out evaluation after the search (see :mod:`harness.study.heldout`): the best
    trial's parameters run again on ``seeds`` seeds the search never used, faithfulness
    on the test split. 0 turns it off (as ``harness run --no-heldout`` does)."""

    seeds: int = Field(default=5, ge=0, le=1000)


class StudyConfig(_Strict):
    """One study: a task, an algorithm, a search space and how to search it."""

    version: int = CONFIG_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
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
        from harness.tasks import expand_tasks

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
    from harness.configs.safe_yaml import read_yaml_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"study config {str(path)!r} does not exist")
    data = read_yaml_file(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a study config is a mapping of keys, got {type(data).__name__}")
    if data.get("kind") == "compare":
        raise ValueError(f"{path}: a comparison config: run `harness compare {path}`")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return validate_config(data, source=str(path))


def validate_config(data: dict[str, Any], source: str = "config") -> StudyConfig:
    """Validate a study config mapping; one-line ValueError on the first problem."""
    return validate_model(StudyConfig, data, source)


def validate_model(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    """Validate ``data`` as ``model``; a one-line ValueError naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        parts = [str(p) for p in first["loc"]]
        where = ".".join(p for p in parts if not re.fullmatch(_UNION_TAGS, p))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ValueError(
            f"{source}: {where}: {message}" if where else f"{source}: {message}"
        ) from None


_UNION_TAGS = r"[a-z]+\[.*\]|float|int|categorical"


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {key}: {part!r} is not a mapping")
        node = child
    node[parts[-1]] = value
