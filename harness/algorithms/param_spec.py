"""What one algorithm parameter may be, and the check every call of an algorithm runs.

An algorithm declares its hyperparameters once, next to its function, with
:func:`hyperparameters`: each name gets a :class:`Param` (its kind, its range, whether a
study may search it), and its default is the one the function's signature gives, so that
too is written once. The decorated function checks every value a call gives before its
body runs and refuses a bad one with a one-line ValueError in the function's own words;
configs, the command line, enqueued points and sweeps check the same declarations through
:mod:`harness.algorithms.params`, in theirs (``sp parameter epochs must be ...``).

Example:
    >>> @hyperparameters(steps=Param("int", low=1))
    ... def count(model, steps: int = 3):
    ...     return steps
    >>> count.parameters["steps"].default
    3
    >>> count(None, steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps must be an integer >= 1, got 0
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch

Function = TypeVar("Function", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """What one parameter may be.

    Attributes:
        kind: ``float``, ``int``, ``bool``, ``choice``, ``edges`` (edge names),
            ``thresholds`` (positive numbers, or one), ``bool_or_path`` or ``path``.
        low, high: Bounds of a number (``None``: unbounded).
        low_open, high_open: Whether the bound itself is excluded.
        choices: For ``choice``: the allowed values.
        optional: ``None`` is allowed.
        searchable: Whether a study may search it (a search space that names one that
            may not is refused).
        default: What the function takes when a call gives nothing (its signature's
            default, filled in by :func:`hyperparameters`).
        call_words: What a refused call of the function is told the value must be, where
            the function words it otherwise than :meth:`describe` does.
        also_on_call: Numbers outside the range that a call of the function accepts all
            the same, while configs and studies may not use them (a learning rate of 0:
            nothing trains, the masks stay where they start).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    searchable: bool = True
    default: Any = None
    call_words: str | None = None
    also_on_call: tuple[float, ...] = ()

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
            text = "one of " + ", ".join(repr(c) for c in self.choices)
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

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is allowed.

        Example:
            >>> spec = Param("float", low=0, low_open=True)
            >>> spec.accepts(0.1), spec.accepts(0), spec.accepts(float("nan")), spec.accepts(True)
            (True, False, False, False)
        """
        if value is None:
            return self.optional or None in self.choices
        if self.kind in ("float", "int"):
            return is_number(value, self.kind) and self.in_range(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.kind == "edges":
            return _are_edge_names(value)
        if self.kind == "thresholds":
            values = number_list(value)
            return bool(values) and all(is_number(v, "float") and v > 0 for v in values)
        if self.kind == "path":
            return isinstance(value, str) and bool(value)
        return isinstance(value, (bool, str, os.PathLike))  # bool_or_path

    def accepts_call(self, value: Any) -> bool:
        """Whether a call of the function may give ``value``: :meth:`accepts`, or one of
        :attr:`also_on_call`.

        Example:
            >>> spec = Param("float", low=0, low_open=True, also_on_call=(0,))
            >>> spec.accepts(0.0), spec.accepts_call(0.0), spec.accepts_call(False)
            (False, True, False)
        """
        if self.accepts(value):
            return True
        return is_number(value, "float") and value in self.also_on_call

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

    def refusal(self, name: str, value: Any) -> str:
        """What a call of the function giving ``name=value`` is told (``value`` refused).

        Example:
            >>> Param("choice", choices=("mean", "zero")).refusal("ablation", "noise")
            "ablation 'noise' is not one of mean, zero"
            >>> Param("thresholds").refusal("thresholds", [0.1, -1])
            'thresholds must be finite positive numbers, got -1'
        """
        if self.kind == "choice":
            listed = ", ".join(str(c) for c in self.choices if c is not None)
            none = " (or None)" if None in self.choices else ""
            return f"{name} {value!r} is not one of {listed}{none}"
        if self.kind == "thresholds":
            values = number_list(value)
            if not values:
                return f"{name} is empty: give at least one positive threshold"
            bad = next(v for v in values if not (is_number(v, "float") and v > 0))
            return f"{name} must be finite positive numbers, got {bad!r}"
        also = f" (or {', '.join(map(repr, self.also_on_call))})" if self.also_on_call else ""
        return f"{name} must be {self.call_words or self.describe()}{also}, got {value!r}"


def is_number(value: Any, kind: str) -> bool:
    """Whether ``value`` is an ``int`` (kind ``int``) or a finite number (``float``); a
    bool is neither.

    Example:
        >>> is_number(2, "int"), is_number(2.0, "int"), is_number(float("inf"), "float")
        (True, False, False)
    """
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def number_list(value: Any) -> list[Any]:
    """One number, a tensor or a collection of numbers as a flat list (what a
    ``thresholds`` value stands for).

    Example:
        >>> number_list(0.1), number_list((0.1, 0.2)), number_list(torch.tensor([[1.0]]))
        ([0.1], [0.1, 0.2], [1.0])
    """
    if isinstance(value, torch.Tensor):
        return value.reshape(-1).tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        return [value]
    return list(value)


def _are_edge_names(value: Any) -> bool:
    """Edge names: any iterable but a string; its items are checked where they can be
    read without consuming them (a collection)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return False
    return not isinstance(value, Collection) or all(isinstance(e, str) for e in value)


def _num(x: float) -> str:
    return "inf" if x == math.inf else f"{x:g}"


def declared(function: Callable[..., Any], **params: Param) -> dict[str, Param]:
    """``params`` with the defaults ``function``'s signature gives them, in its order.

    Example:
        >>> def f(model, epochs=20): ...
        >>> declared(f, epochs=Param("int", low=1))["epochs"].default
        20
    """
    signature = inspect.signature(function).parameters
    unknown = [name for name in params if name not in signature]
    if unknown:
        raise TypeError(f"{function.__name__} takes no parameter {unknown[0]!r}")
    return {
        name: replace(params[name], default=p.default)
        for name, p in signature.items()
        if name in params
    }


def check_arguments(
    params: Mapping[str, Param], arguments: Mapping[str, Any], where: str = ""
) -> None:
    """A one-line ValueError, in a function's words, for the first argument that its
    :class:`Param` refuses on a call (:meth:`Param.accepts_call`; arguments without one
    are left alone).

    Example:
        >>> check_arguments({"epochs": Param("int", low=1)}, {"epochs": 0}, "trial 2: ")
        Traceback (most recent call last):
        ...
        ValueError: trial 2: epochs must be an integer >= 1, got 0
    """
    for name, value in arguments.items():
        spec = params.get(name)
        if spec is not None and not spec.accepts_call(value):
            raise ValueError(where + spec.refusal(name, value))


def hyperparameters(**params: Param) -> Callable[[Function], Function]:
    """Declare a function's hyperparameters and check them on every call.

    The decorated function has ``.parameters``: the declarations with their defaults
    (:func:`declared`). A call that does not fit the signature gets Python's own
    TypeError; a value a declaration refuses gets :func:`check_arguments`' ValueError
    before the body runs.
    """

    def decorate(function: Function) -> Function:
        signature = inspect.signature(function)
        complete = declared(function, **params)

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                given = signature.bind(*args, **kwargs).arguments
            except TypeError:
                return function(*args, **kwargs)  # raises Python's own TypeError
            check_arguments(complete, given)
            return function(*args, **kwargs)

        checked.parameters = complete  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate
