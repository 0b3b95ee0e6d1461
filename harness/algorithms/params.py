"""The type and allowed range of every algorithm parameter, checked before anything runs.

Each algorithm declares its hyperparameters once, next to its function
(:func:`harness.algorithms.param_spec.hyperparameters`); :data:`PARAMETERS` collects them
by slug. The command line (``--param``, ``--set``), study configs (fixed values,
search-space bounds, enqueued points), comparison configs and
:func:`harness.evaluation.run_one.run_algorithm` all check against it, so a bad value gets
one ``ValueError`` naming the parameter, the value and what is allowed, instead of a
``TypeError`` deep inside training. A call of an algorithm's Python function checks the
same declarations (in the function's own words).

Example:
    >>> check_values("sp", {"learning_rate": 0.05, "epochs": 10})
    >>> check_values("sp", {"learning_rate": "banana"})
    Traceback (most recent call last):
    ...
    ValueError: sp parameter learning_rate must be a finite number > 0, got 'banana'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.algorithms.acdc import acdc_prune_scores
from harness.algorithms.eap_ig import eap_ig_prune_scores
from harness.algorithms.edge_attribution import eap_prune_scores
from harness.algorithms.edge_pruning import edge_pruning_prune_scores
from harness.algorithms.oracle import oracle_prune_scores
from harness.algorithms.param_spec import Param, declared, is_number
from harness.algorithms.random_scores import random_prune_scores
from harness.algorithms.subnetwork_probing import subnetwork_probing_prune_scores
from harness.interop.mib_files import import_prune_scores
from harness.util.seeds import SEED_MAX, check_seed

__all__ = [
    "PARAMETERS",
    "SEED_MAX",
    "Param",
    "check_batched",
    "check_distribution",
    "check_point",
    "check_seed",
    "check_value",
    "check_values",
]

PARAMETERS: dict[str, dict[str, Param]] = {
    "sp": subnetwork_probing_prune_scores.parameters,  # type: ignore[attr-defined]
    "acdc": acdc_prune_scores.parameters,  # type: ignore[attr-defined]
    "eap": eap_prune_scores.parameters,  # type: ignore[attr-defined]
    "eap-ig": eap_ig_prune_scores.parameters,  # type: ignore[attr-defined]
    "edge-pruning": edge_pruning_prune_scores.parameters,  # type: ignore[attr-defined]
    "random": random_prune_scores.parameters,  # type: ignore[attr-defined]
    "oracle": oracle_prune_scores.parameters,  # type: ignore[attr-defined]
    # declared here: its function lives in harness.interop, below the algorithms
    "import": declared(import_prune_scores, path=Param("path", optional=True)),
}
"""Per algorithm slug, its hyperparameters' declarations (with their defaults). SP's
batched path (:mod:`harness.algorithms.sp_batched`) takes the same names as SP, plus
``seed``."""


def check_value(algorithm: str, name: str, value: Any, where: str = "") -> None:
    """A ValueError naming ``name``, ``value`` and what is allowed, if it is not allowed.

    Parameters without a spec are left to the caller's name check.

    Example:
        >>> check_value("acdc", "thresholds", [0.1, 0.01])
        >>> check_value("eap", "ablation", "noise", "--param ")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --param eap parameter ablation must be one of 'resample', ..., got 'noise'
    """
    spec = PARAMETERS.get(algorithm, {}).get(name)
    if spec is not None and not spec.accepts(value):
        raise ValueError(
            f"{where}{algorithm} parameter {name} must be {spec.describe()}, got {value!r}"
        )


def check_values(algorithm: str, params: Mapping[str, Any], where: str = "") -> None:
    """:func:`check_value` for every entry of ``params``.

    Example:
        >>> check_values("sp", {"mask_fn": None, "circuit_size": None, "restore_clean": True})
    """
    for name, value in params.items():
        check_value(algorithm, name, value, where)


def check_distribution(algorithm: str, name: str, dist: Any, where: str = "") -> None:
    """A search-space entry (``type`` float, int or categorical) must stay within what
    the parameter allows: numeric bounds inside its range, every choice allowed.

    Example:
        >>> from harness.configs.study import FloatRange
        >>> dist = FloatRange(type="float", low=0, high=1)
        >>> check_distribution("sp", "dropout_p", dist)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: search_space.dropout_p: ... must be a finite number in [0, 1), got high 1.0
    """
    spec = PARAMETERS.get(algorithm, {}).get(name)
    if spec is None:
        return
    prefix = f"{where}search_space.{name}: "
    if not spec.searchable:
        raise ValueError(f"{prefix}{algorithm} parameter {name} cannot be searched")
    if dist.type == "categorical":
        for choice in dist.choices:
            check_value(algorithm, name, choice, prefix)
        return
    if spec.kind not in ("float", "int"):
        raise ValueError(
            f"{prefix}{algorithm} parameter {name} is not a number: search it with "
            f"type: categorical ({spec.describe()})"
        )
    if spec.kind == "int" and dist.type == "float":
        raise ValueError(f"{prefix}{algorithm} parameter {name} is an integer: use type: int")
    for bound in ("low", "high"):
        value = getattr(dist, bound)
        if not spec.accepts(value):
            raise ValueError(
                f"{prefix}{algorithm} parameter {name} must be {spec.describe()}, "
                f"got {bound} {value!r}"
            )


def check_point(
    algorithm: str, point: Mapping[str, Any], search_space: Mapping[str, Any], where: str
) -> None:
    """An enqueued point: every key searched, every value allowed and inside its range.

    Example:
        >>> from harness.configs.study import IntRange
        >>> space = {"epochs": IntRange(type="int", low=10, high=200, step=10)}
        >>> check_point("sp", {"epochs": 25}, space, "enqueue[0]: ")
        Traceback (most recent call last):
        ...
        ValueError: enqueue[0]: epochs 25 is outside the search space (int from 10 to 200, step 10)
    """
    for name, value in point.items():
        if name not in search_space:
            searched = ", ".join(search_space) or "nothing"
            raise ValueError(f"{where}{name!r} is not searched (searched: {searched})")
        check_value(algorithm, name, value, where)
        dist = search_space[name]
        if not _in_distribution(value, dist):
            raise ValueError(
                f"{where}{name} {value!r} is outside the search space ({_dist_text(dist)})"
            )


def _in_distribution(value: Any, dist: Any) -> bool:
    if dist.type == "categorical":
        return any(value == c and type(value) is type(c) for c in dist.choices)
    if not is_number(value, dist.type):
        return False
    if not dist.low <= value <= dist.high:
        return False
    step = dist.step
    if step is None or (dist.type == "int" and step == 1):
        return True
    k = (value - dist.low) / step
    return abs(k - round(k)) < 1e-8


def _dist_text(dist: Any) -> str:
    if dist.type == "categorical":
        return "choices " + ", ".join(repr(c) for c in dist.choices)
    text = f"{dist.type} from {dist.low:g} to {dist.high:g}"
    if dist.log:
        text += ", log"
    if dist.step is not None and not (dist.type == "int" and dist.step == 1):
        text += f", step {dist.step:g}"
    return text


def check_batched(trials: Iterable[Mapping[str, Any]], shared: Mapping[str, Any]) -> None:
    """SP's batched path: per-trial settings and shared settings, as SP's own.

    Example:
        >>> check_batched([{"epochs": 5, "seed": 1}], {"ablation": "mean"})
        >>> check_batched([{"epochs": 0}], {})
        Traceback (most recent call last):
        ...
        ValueError: trial 0: sp parameter epochs must be an integer >= 1, got 0
    """
    for i, trial in enumerate(trials):
        for name, value in trial.items():
            if name == "seed":
                check_seed(value, f"trial {i}: seed")
            else:
                check_value("sp", name, value, f"trial {i}: ")
    check_values("sp", shared)
