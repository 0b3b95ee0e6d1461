"""The type and allowed range of every algorithm parameter, checked before anything runs.

One table, :data:`PARAMETERS`, says what each algorithm's hyperparameters may be. The
command line (``--param``, ``--set``), study configs (fixed values, search-space bounds,
enqueued points), comparison configs and :func:`harness.evaluation.run_one.run_algorithm` all check
against it, so a bad value gets one ``ValueError`` naming the parameter, the value and
what is allowed, instead of a ``TypeError`` deep inside training.

Example:
    >>> check_values("sp", {"learning_rate": 0.05, "epochs": 10})
    >>> check_values("sp", {"learning_rate": "banana"})
    Traceback (most recent call last):
    ...
    ValueError: sp parameter learning_rate must be a finite number > 0, got 'banana'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SEED_MAX = 2**31 - 1
"""Largest seed accepted: a study's trial ``n`` is seeded with ``seed + n``, and NumPy
(inside Optuna's samplers) takes seeds below 2**32."""


def check_seed(seed: Any, what: str = "seed") -> int:
    """A seed in ``[0, SEED_MAX]``, else a one-line ValueError.

    Example:
        >>> check_seed(3)
        3
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{what} must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return seed


@dataclass(frozen=True)
class Param:
    """What one parameter may be.

    Attributes:
        kind: ``float``, ``int``, ``bool``, ``choice``, ``edges`` (a list of edge names),
            ``thresholds`` (positive numbers, or one), ``bool_or_path`` or ``path``.
        low, high: Bounds of a number (``None``: unbounded).
        low_open, high_open: Whether the bound itself is excluded.
        choices: For ``choice``: returns the allowed values (read when checking, so
            the algorithm module stays the one place that lists them).
        optional: ``None`` is allowed.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: Callable[[], Iterable[Any]] | None = None
    optional: bool = False

    def describe(self) -> str:
        """The allowed values in words.

        Example:
            >>> Param("int", low=1, optional=True).describe()
            'an integer >= 1 (or null)'
        """
        if self.kind in ("float", "int"):
            noun = "a finite number" if self.kind == "float" else "an integer"
            text = f"{noun}{self._range_text()}"
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self._choices())
        elif self.kind == "edges":
            text = "a list of edge names"
        elif self.kind == "thresholds":
            text = "a finite number > 0 or a non-empty list of them"
        elif self.kind == "path":
            text = "a file path"
        else:
            text = "true, false or a file path"
        return f"{text} (or null)" if self.optional and self.kind != "choice" else text

    def _range_text(self) -> str:
        low, high = self.low, self.high
        if low is not None and high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f" in {left}{_num(low)}, {_num(high)}{right}"
        if low is not None:
            return f" {'>' if self.low_open else '>='} {_num(low)}"
        if high is not None:
            return f" {'<' if self.high_open else '<='} {_num(high)}"
        return ""

    def _choices(self) -> list[Any]:
        return list(self.choices()) if self.choices is not None else []

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is allowed.

        Example:
            >>> spec = Param("float", low=0, low_open=True)
            >>> spec.accepts(0.1), spec.accepts(0), spec.accepts(float("nan")), spec.accepts(True)
            (True, False, False, False)
        """
        if value is None:
            return self.optional or (self.kind == "choice" and None in self._choices())
        if self.kind in ("float", "int"):
            return _is_number(value, self.kind) and self.in_range(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self._choices())
        if self.kind == "edges":
            return isinstance(value, (list, tuple, set, frozenset)) and all(
                isinstance(e, str) for e in value
            )
        if self.kind == "thresholds":
            values = value if isinstance(value, (list, tuple)) else [value]
            return bool(values) and all(_is_number(v, "float") and v > 0 for v in values)
        if self.kind == "path":
            return isinstance(value, str) and bool(value)
        return isinstance(value, (bool, str))  # bool_or_path

    def in_range(self, value: float) -> bool:
        """Whether a number lies within the bounds.

        Example:
            >>> Param("float", low=0, high=1, high_open=True).in_range(1.0)
            False
        """
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def _is_number(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(x: float) -> str:
    return "inf" if x == math.inf else f"{x:g}"


def _mask_fns() -> list[Any]:
    from harness.engine.masks import MASK_FNS

    return [*MASK_FNS, None]


def _ablations() -> tuple[str, ...]:
    from harness.engine.ablation import ABLATIONS

    return ABLATIONS


def _faithfulness_targets() -> tuple[str, ...]:
    from harness.engine.faithfulness import FAITHFULNESS_TARGETS

    return FAITHFULNESS_TARGETS


def _acdc_metrics() -> tuple[str, ...]:
    from harness.algorithms.acdc import ACDC_METRICS

    return ACDC_METRICS


def _eap_metrics() -> tuple[str, ...]:
    from harness.algorithms.edge_attribution import EAP_METRICS

    return EAP_METRICS


def _eap_ig_variants() -> tuple[str, ...]:
    from harness.algorithms.eap_ig import EAP_IG_VARIANTS

    return EAP_IG_VARIANTS


_ABLATION = Param("choice", choices=_ablations)
_SP: dict[str, Param] = {
    "learning_rate": Param("float", low=0, low_open=True),
    "epochs": Param("int", low=1),
    "regularize_lambda": Param("float", low=0),
    "mask_fn": Param("choice", choices=_mask_fns),
    "dropout_p": Param("float", low=0, high=1, high_open=True),
    "init_val": Param("float"),
    "show_train_graph": Param("bool_or_path"),
    "circuit_size": Param("int", low=1, optional=True),
    "tree_optimisation": Param("bool"),
    "avoid_edges": Param("edges", optional=True),
    "avoid_lambda": Param("float", low=0),
    "faithfulness_target": Param("choice", choices=_faithfulness_targets),
    "ablation": _ABLATION,
    "restore_clean": Param("bool"),
}

PARAMETERS: dict[str, dict[str, Param]] = {
    "sp": _SP,
    "acdc": {
        "thresholds": Param("thresholds", optional=True),
        "ablation": _ABLATION,
        "metric": Param("choice", choices=_acdc_metrics),
    },
    "eap": {"ablation": _ABLATION, "metric": Param("choice", choices=_eap_metrics)},
    "eap-ig": {
        "steps": Param("int", low=1),
        "variant": Param("choice", choices=_eap_ig_variants),
        "ablation": _ABLATION,
        "metric": Param("choice", choices=_eap_metrics),
    },
    "edge-pruning": {
        "target_sparsity": Param("float", low=0, high=1, high_open=True),
        "learning_rate": Param("float", low=0, low_open=True),
        "lagrangian_lr": Param("float", low=0, low_open=True),
        "epochs": Param("int", low=1),
        "warmup_fraction": Param("float", low=0, high=1),
        "init_log_alpha": Param("float"),
        "faithfulness_target": Param("choice", choices=_faithfulness_targets),
        "ablation": _ABLATION,
    },
    "random": {},
    "oracle": {},
    "import": {"path": Param("path", optional=True)},
}
"""Per algorithm slug, its hyperparameters' specs. SP's batched path
(:mod:`harness.algorithms.sp_batched`) takes the same names as SP, plus ``seed``."""


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
    if not _is_number(value, dist.type):
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
